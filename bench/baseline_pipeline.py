"""The limit baseline: a minimal but correct pipeline of the engine's records, on its broker.

What the engine's throughput is measured against (issue: "seven times faster"). It moves the
same records per market order through the same kind of topics as the engine, with plain
aiokafka and nothing else: no Faust, no HTTP, no PostgreSQL, no timers, no routing maths.

- a writer: consumes `orders.commands`, decodes each command, produces the events the engine
  decides for it (to the command's partition of `orders.events`) and its work item;
- a router: consumes `orders.routing`, produces `RouteFound`;
- an executor: consumes `orders.execution`, produces `SubmissionSucceeded` and `SwapConfirmed`;
- a load client: C closed-loop clients, each producing an `ExecuteOrder` and waiting for its
  order's terminal event before the next.

Correct means what the engine promises: `acks=all`, idempotent producers, and an input's
offset is committed only after every record it caused is acknowledged (each loop takes a
batch, produces, awaits all deliveries; offsets are committed between batches, at most every
100 ms, like the engine's commit interval). The records are the engine's own, encoded
by its codec from one happy-path order that the pure aggregate decided (`_script`), with each
order's id put in: 3 commands, 2 work items and 6 events per order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from bench.order_histories import POLICY
from domain.market import Market
from domain.orders import (
    Command,
    Event,
    ExecuteOrder,
    RouteFound,
    SwapConfirmed,
    decide,
    evolve,
    initial_state,
)
from domain.orders.events import TERMINAL_EVENTS
from domain.orders.signatures import transaction_signature
from domain.orders.status import OrderStatus
from domain.orders.terms import MarketTerms
from domain.routing import best_route
from domain.tokens import SOL, USDC
from domain.work import ExecuteSwap, QuoteRoute, Work
from oee.settings import Topics
from schemas.codec import Codec

BATCH = 500
# As the engine's workers: offsets are committed on an interval, never past an unacked output.
COMMIT_INTERVAL_S = 0.1
Handler = Callable[[AIOKafkaProducer, ConsumerRecord[bytes, bytes]],
                   Awaitable[list[Awaitable[Any]]]]


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One command of a happy-path market order, and what the engine writes for it."""

    command: Command
    events: tuple[tuple[Event, OrderStatus], ...]
    work: Work | None


def _script() -> dict[type[Command], Step]:
    """Decide one SOL->USDC market order with the pure aggregate; keep what each command did."""
    order_id, now = "template", datetime(2026, 1, 1, tzinfo=UTC)
    decision = best_route(Market.default(), SOL.mint, USDC.mint, 10**9)
    signature = transaction_signature(order_id, 1)
    meta: dict[str, Any] = {"order_id": order_id, "issued_at": now, "correlation_id": None}
    commands: list[tuple[Command, Work | None]] = [
        (ExecuteOrder(command_id="c1", **meta, terms=MarketTerms(
            token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
            token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
            amount_in=10**9, slippage_bps=50)),
         QuoteRoute(order_id=order_id, attempt=1, token_in=SOL.mint, token_out=USDC.mint,
                    amount_in=10**9)),
        (RouteFound(command_id="c2", **meta, attempt=1, decision=decision),
         ExecuteSwap(order_id=order_id, attempt=1, signature=signature, legs=decision.legs,
                     min_amount_out=decision.amount_out * 995 // 1000)),
        # Zero confirmation delay: the swap lands as it is submitted, and the engine's
        # execution stage reports it by its confirmation alone (the writer decides both).
        (SwapConfirmed(command_id="c3", **meta, attempt=1, signature=signature,
                       amount_out=decision.amount_out, slot=3), None),
    ]
    state, script = initial_state(order_id), {}
    for command, work in commands:
        decided = []
        for event in decide(state, command, now=now, policy=POLICY):
            state = evolve(state, event)
            assert state.status is not None
            decided.append((event, state.status))
        script[type(command)] = Step(command, tuple(decided), work)
    return script


class Baseline:
    """The three stages and the load client on `topics` of the broker at `bootstrap`."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self._bootstrap, self._topics, self._codec = bootstrap, topics, Codec.load()
        self._script = _script()
        self._done: dict[str, asyncio.Event] = {}
        self._ready = 0

    async def _all_ready(self, stages: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._ready < stages:
            if time.monotonic() > deadline:
                raise TimeoutError("the baseline's consumers were not assigned in time")
            await asyncio.sleep(0.05)

    async def _started(self, consumer: AIOKafkaConsumer) -> None:
        """Start `consumer` and pin its positions to the end now: a record produced after
        this is read, so the load may start ("latest" alone resolves at the first fetch)."""
        await consumer.start()
        while not consumer.assignment():
            await asyncio.sleep(0.05)  # the group join; `_all_ready` bounds the wait
        for partition in consumer.assignment():
            await consumer.position(partition)
        self._ready += 1

    async def run(self, orders: int, clients: int) -> dict[str, Any]:
        """Move `orders` orders through with `clients` closed-loop clients; orders/s and p50/p99
        of produce->terminal, measured over the whole run (the stages are warm by then)."""
        self._ready = 0
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=1)
        await producer.start()
        group = f"baseline-{uuid.uuid4().hex[:8]}"
        stages = [
            self._stage(group, self._topics.commands, producer, self._write),
            self._stage(group, self._topics.routing, producer, self._route),
            self._stage(group, self._topics.execution, producer, self._execute),
            self._watch_terminals(),
        ]
        tasks = [asyncio.create_task(stage) for stage in stages]
        try:
            await self._all_ready(len(stages))
            return await self._load(producer, orders, clients)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await producer.stop()

    async def _load(self, producer: AIOKafkaProducer, orders: int,
                    clients: int) -> dict[str, Any]:
        latencies: list[float] = []
        remaining = iter(range(orders))

        async def client() -> None:
            for _ in remaining:
                order_id = str(uuid.uuid4())
                done = self._done[order_id] = asyncio.Event()
                command = _with_order(self._script[ExecuteOrder].command, order_id)
                started = time.perf_counter()
                await (await producer.send(self._topics.commands,
                                           self._codec.encode_command(command),
                                           key=order_id.encode()))
                await done.wait()
                latencies.append((time.perf_counter() - started) * 1000)
                del self._done[order_id]

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        ordered = sorted(latencies)
        return {"orders": len(latencies), "orders_per_s": round(len(latencies) / elapsed, 1),
                "e2e_p50_ms": round(statistics.median(ordered), 2),
                "e2e_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2)}

    async def _stage(self, group: str, topic: str, producer: AIOKafkaProducer,
                     handle: Handler) -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self._bootstrap,
                                    group_id=f"{group}-{topic}", enable_auto_commit=False,
                                    auto_offset_reset="latest", fetch_max_wait_ms=5)
        await self._started(consumer)
        committed = time.monotonic()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                deliveries = []
                for records in batches.values():
                    for record in records:
                        deliveries.extend(await handle(producer, record))
                if deliveries:
                    await asyncio.gather(*deliveries)  # every output acked ...
                if batches and time.monotonic() - committed >= COMMIT_INTERVAL_S:
                    await consumer.commit()  # ... before the inputs count as done
                    committed = time.monotonic()
        finally:
            await consumer.stop()

    async def _write(self, producer: AIOKafkaProducer,
                     record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        command = self._codec.decode_command(record.value or b"")
        step = self._script[type(command)]
        order_id = command.order_id
        sent = [await producer.send(
                    self._topics.events,
                    self._codec.encode_event(_with_order(event, order_id), status=status),
                    key=record.key, partition=record.partition)
                for event, status in step.events]
        if step.work is not None:
            topic = (self._topics.routing if isinstance(step.work, QuoteRoute)
                     else self._topics.execution)
            sent.append(await producer.send(
                topic, self._codec.encode_work(_with_order(step.work, order_id)),
                key=record.key))
        return sent

    async def _route(self, producer: AIOKafkaProducer,
                     record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        work = self._codec.decode_work(record.value or b"")
        routed = _with_order(self._script[RouteFound].command, work.order_id)
        return [await producer.send(self._topics.commands, self._codec.encode_command(routed),
                                    key=record.key)]

    async def _execute(self, producer: AIOKafkaProducer,
                       record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        work = self._codec.decode_work(record.value or b"")
        confirmed = _with_order(self._script[SwapConfirmed].command, work.order_id)
        return [await producer.send(self._topics.commands, self._codec.encode_command(confirmed),
                                    key=record.key)]

    async def _watch_terminals(self) -> None:
        consumer = AIOKafkaConsumer(self._topics.events, bootstrap_servers=self._bootstrap,
                                    group_id=None, auto_offset_reset="latest",
                                    fetch_max_wait_ms=5)
        await self._started(consumer)
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                for records in batches.values():
                    for record in records:
                        event = self._codec.decode_event(record.value or b"")
                        done = self._done.get(event.order_id)
                        if done is not None and isinstance(event, TERMINAL_EVENTS):
                            done.set()
        finally:
            await consumer.stop()


def _with_order(value: Any, order_id: str) -> Any:
    return dataclasses.replace(value, order_id=order_id)
