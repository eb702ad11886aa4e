"""End-to-end order benchmark: real HTTP POSTs in, terminal events out of `orders.events`.

Scenarios (each run 3 times on one stack; figures reported as medians, all runs kept):
- `throughput`: zero venue latency and confirmation delay, closed loop (C concurrent
  clients, each sending its next order once its last one ended, as the limit baseline's
  clients do) — sustained orders/s end to end, POST p50/p99, POST→terminal p50/p99.
- `flood`: the same, but each client sends its next order as soon as its POST was answered:
  the edge accepts faster than the pipeline finishes, and the backlog grows (one run).
- `light`: zero latency, open loop at 50 orders/s — POST→terminal p50/p99 at light load.
- `realistic`: default venue latency (150–250 ms) and confirmation (2–3 s), 5% transient
  failures, open loop at a fixed rate — orders/s sustained and orders in flight.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.baseline_pipeline import Baseline
from bench.http_client import ConnectionPool
from bench.proc_cpu import rss_mb_by_role
from bench.stack import Stack
from domain.orders.events import TERMINAL_EVENTS, Event
from infra.fetch_pacing import FetchPacing, pace_consumer
from infra.schema_registry import reading_codec
from infra.topics import ensure_topics
from oee.settings import Settings
from schemas import headers

TERMINAL_TYPES = frozenset(kind.__name__ for kind in TERMINAL_EVENTS)
FOLLOW_TIMEOUT_S = 60.0  # a follower gives up on an order that never ends (it is counted)
WATCH_PACING = FetchPacing(busy_min_bytes=64 * 1024, busy_max_wait_ms=100, idle_max_wait_ms=500)

ZERO_LATENCY = {"venue_latency_min_ms": 0, "venue_latency_max_ms": 0, "confirm_delay_min_ms": 0,
                "confirm_delay_max_ms": 0, "transient_failure_rate": 0.0}


@dataclass
class Run:
    posted_at: dict[str, float] = field(default_factory=dict)
    post_ms: list[float] = field(default_factory=list)
    finished_at: dict[str, float] = field(default_factory=dict)
    in_flight: list[int] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # "503 read_model_unavailable": n
    followed: dict[str, asyncio.Event] = field(default_factory=dict)  # order id -> terminal

    def finished(self, order_id: str, at: float) -> None:
        self.finished_at.setdefault(order_id, at)
        waiter = self.followed.pop(order_id, None)
        if waiter is not None:
            waiter.set()

    async def terminal(self, order_id: str, timeout_s: float) -> None:
        """Until `order_id`'s terminal event was seen, or `timeout_s` passed."""
        if order_id in self.finished_at:
            return
        waiter = self.followed.setdefault(order_id, asyncio.Event())
        try:
            await asyncio.wait_for(waiter.wait(), timeout_s)
        except TimeoutError:
            self.followed.pop(order_id, None)

    def summary(self) -> dict[str, Any]:
        e2e = [(self.finished_at[o] - t) * 1000 for o, t in self.posted_at.items()
               if o in self.finished_at]
        span = max(self.finished_at.values()) - min(self.posted_at.values())
        return {
            "orders": len(self.posted_at), "finished": len(self.finished_at),
            "orders_per_s": round(len(self.finished_at) / span, 1),
            "post_p50_ms": pct(self.post_ms, 50), "post_p99_ms": pct(self.post_ms, 99),
            "e2e_p50_ms": pct(e2e, 50), "e2e_p99_ms": pct(e2e, 99),
            "in_flight_max": max(self.in_flight, default=0),
            "in_flight_median": statistics.median(self.in_flight) if self.in_flight else 0,
            "refused": sum(self.refused.values()), "refused_by_answer": dict(self.refused),
        }


def pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))], 2)


class TerminalWatcher:
    """Notes when each order's terminal event was written: its record's time, on the bench
    process's monotonic clock.

    The record's headers name its type and order, so nothing is decoded; and since a
    terminal's time does not depend on when it is read, the consumer gathers its fetches
    (64 KiB or 100 ms) instead of asking the broker every few ms. Polling at 5 ms cost this
    process and the broker several ms of CPU per order on the cores the engine runs on.
    What the latency figures therefore measure: from the POST until the writer produced the
    terminal event (a subscriber sees it one fetch later)."""

    def __init__(self, settings: Settings) -> None:
        self._settings, self._codec = settings, reading_codec(settings)
        self.run = Run()

    async def __aenter__(self) -> TerminalWatcher:
        self._consumer = AIOKafkaConsumer(
            self._settings.topics.events, bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None, auto_offset_reset="latest",
            fetch_max_wait_ms=WATCH_PACING.idle_max_wait_ms)
        pace_consumer(self._consumer, WATCH_PACING)
        await self._consumer.start()
        await self._consumer.seek_to_end()
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _watch(self) -> None:
        wall_to_monotonic = time.monotonic() - time.time()
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    order_id = terminal_order(record, self._codec.decode_event)
                    if order_id is not None:
                        self.run.finished(order_id, record.timestamp / 1000 + wall_to_monotonic)


def terminal_order(record: ConsumerRecord[bytes, bytes],
                   decode: Callable[[bytes], Event]) -> str | None:
    """The order a terminal event ends (None for any other record), from the record's
    headers; a record without them is decoded."""
    found = dict(record.headers or ())
    kind, order = found.get(headers.TYPE), found.get(headers.ORDER_ID)
    if kind is not None and order is not None:
        return order.decode() if kind.decode() in TERMINAL_TYPES else None
    if record.value is None or record.key is None:  # a writer's claim, not an event
        return None
    event = decode(record.value)
    return event.order_id if isinstance(event, TERMINAL_EVENTS) else None


async def post_one(client: ConnectionPool, run: Run, i: int) -> str | None:
    """POST one market order; its id if it was accepted."""
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": f"0.{(i % 999) + 1:03d}",
            "slippageBps": 100, "clientOrderId": str(uuid.uuid4())}
    started = time.monotonic()
    response = await client.post("/api/orders/execute", body)
    run.post_ms.append((time.monotonic() - started) * 1000)
    if response.status != 201:  # counted, not fatal: a refusal under load is a figure too
        answer = response.json()
        code = answer.get("error", "?") if isinstance(answer, dict) else "?"
        key = f"{response.status} {code}"
        run.refused[key] = run.refused.get(key, 0) + 1
        return None
    order_id = str(response.json()["orderId"])  # type: ignore[index]
    run.posted_at[order_id] = started
    return order_id


async def closed_loop(client: ConnectionPool, run: Run, orders: int, clients: int,
                      follow: bool = False) -> None:
    """`clients` clients, each sending its next order once its POST was answered or, with
    `follow`, once the order it sent ended (as the limit baseline's clients do: at most
    `clients` orders in flight, so the pipeline is saturated but not flooded)."""
    counter = iter(range(orders))

    async def one_client() -> None:
        for i in counter:
            order_id = await post_one(client, run, i)
            if follow and order_id is not None:
                await run.terminal(order_id, FOLLOW_TIMEOUT_S)

    await asyncio.gather(*(one_client() for _ in range(clients)))


async def open_loop(client: ConnectionPool, run: Run, orders: int, rate: float) -> None:
    start, tasks = time.monotonic(), []
    for i in range(orders):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post_one(client, run, i)))
    await asyncio.gather(*tasks)


async def sample_in_flight(run: Run) -> None:
    while True:
        run.in_flight.append(len(run.posted_at) - len(run.finished_at))
        await asyncio.sleep(0.1)


async def one_run(stack: Stack, mode: str, orders: int, clients: int, rate: float,
                  timeout_s: float, port: int | None = None) -> dict[str, Any]:
    settings = stack.settings
    async with TerminalWatcher(settings) as watcher, ConnectionPool(
            settings.api_host, port or settings.api_port, clients, stack.auth_headers) as client:
        run = watcher.run
        sampler = asyncio.create_task(sample_in_flight(run))
        if mode in ("closed", "follow"):
            await closed_loop(client, run, orders, clients, follow=mode == "follow")
        else:
            await open_loop(client, run, orders, rate)
        deadline = time.monotonic() + timeout_s
        while len(run.finished_at) < len(run.posted_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        sampler.cancel()
        return run.summary()


def scenario(name: str, overrides: dict[str, Any], mode: str, orders: int, clients: int,
             rate: float, runs: int, timeout_s: float, *,
             baseline: bool = False) -> dict[str, Any]:
    """`runs` runs of the engine; with `baseline`, each followed by a run of the limit
    baseline (bench.baseline_pipeline) on the same broker: A, B, A, B."""
    baseline_runs: list[dict[str, Any]] = []
    with Stack(overrides) as stack:
        asyncio.run(one_run(stack, "closed", 200, 16, 0, 60))  # warm-up: group joins, JIT-free
        limit = _baseline(stack) if baseline else None
        results = []
        for _ in range(runs):
            results.append(asyncio.run(one_run(stack, mode, orders, clients, rate, timeout_s)))
            results[-1]["rss_mb"] = rss_mb_by_role(os.getpid())  # the stack after the run
            if limit is not None:
                baseline_runs.append(asyncio.run(limit.run(orders, clients)))
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]
               if not isinstance(results[0][key], dict)}
    report = {"scenario": name, "mode": mode, "rate": rate, "clients": clients,
              "median": medians, "runs": results}
    if baseline_runs:
        limit_rate = statistics.median(r["orders_per_s"] for r in baseline_runs)
        report["baseline"] = {"median_orders_per_s": limit_rate, "runs": baseline_runs,
                              "engine_percent": round(100 * medians["orders_per_s"]
                                                      / limit_rate, 1)}
    return report


def _baseline(stack: Stack) -> Baseline:
    """The limit baseline on its own topics of the stack's broker, warmed up once."""
    settings = stack.settings.model_copy(update={"topic_prefix": "baseline."})
    bootstrap = settings.kafka_bootstrap_servers or ""
    asyncio.run(ensure_topics(settings, bootstrap))
    limit = Baseline(bootstrap, settings.topics)
    asyncio.run(limit.run(200, 16))
    return limit


def run_all(quick: bool = False) -> list[dict[str, Any]]:
    runs = 1 if quick else 3
    n = 500 if quick else 3000
    quiet = {**ZERO_LATENCY, "log_level": "WARNING"}
    return [
        # Each client follows its order to its end before the next, like the baseline's.
        scenario("throughput", quiet, "follow", n, 64, 0, runs, 120, baseline=True),
        # Each client only waits for its POST: the edge outruns the pipeline (a flood).
        scenario("flood", quiet, "closed", n, 64, 0, 1, 300),
        scenario("light", ZERO_LATENCY, "open", 250 if quick else 500, 50, 50.0, runs, 60),
        scenario("realistic", {}, "open", 600 if quick else 3000, 400, 150.0, runs, 120),
    ]
