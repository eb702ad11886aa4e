"""Event-to-WebSocket delivery latency of the live edge, with many clients connected.

    python -m bench.ws_bench [--clients 1000] [--rate 500] [--runs 3] [--all-clients 1]

Runs the API in its own process (`python -m oee api`, so the clients and the producer here
do not share its CPU) against Kafka and PostgreSQL (the environment's, or local ones), on
topics and a schema of its own that are deleted afterwards. Per run:

1. `--clients` orders are accepted (their OrderAccepted produced) and one client per order
   connects to `WS /api/orders/{id}/stream`; `--all-clients` more follow
   `WS /api/orders/stream/all` (a dashboard each);
2. the rest of every order's history (made by the pure aggregate) is produced at `--rate`
   events/s in total, each event stamped with the time it is handed to the producer;
3. latency = the client's receipt time - that stamp (same host, same clock).

Prints one JSON document: every run's p50/p99/max per stream kind, and the median of the
runs' figures. Events are synthetic, so no stream worker or projector runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

import httpx
import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.order_histories import HistoryMaker
from domain.orders import Event, OrderState, evolve, initial_state
from infra.schema_registry import schema_registry
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.settings import AuthMode, Settings
from projections.migrate import migrate
from schemas.codec import Codec

CODEC = Codec.load()


@dataclass
class Latencies:
    """What one kind of client received: a latency per message, and how streams ended."""

    ms: list[float] = field(default_factory=list)
    closed: dict[int, int] = field(default_factory=dict)  # close code -> streams

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.ms)

        def pick(quantile: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))], 2)

        return {"messages": len(ordered), "p50_ms": pick(0.50), "p99_ms": pick(0.99),
                "max_ms": pick(1.0),
                "closed": {str(code): n for code, n in sorted(self.closed.items())}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def latency_ms(message: dict[str, Any]) -> float:
    return (time.time() - datetime.fromisoformat(message["timestamp"]).timestamp()) * 1000


# --- the system under test ---------------------------------------------------------------


@contextmanager
def bench_settings() -> Iterator[Settings]:
    """Services as configured (or local ones for the block), and names of our own."""
    base = Settings()
    tag = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        bootstrap = stack.enter_context(kafka_bootstrap(base))
        dsn = stack.enter_context(postgres_dsn(base, durable=False))
        registry = stack.enter_context(schema_registry(base, dsn))
        yield base.model_copy(update={
            "kafka_bootstrap_servers": bootstrap, "database_url": dsn,
            "schema_registry_url": registry,
            "topic_prefix": f"wsbench{tag}.", "db_schema": f"wsbench_{tag}",
            "engine_id": f"wsbench-{tag}", "api_port": free_port(), "log_level": "WARNING",
            # The subject is the fan-out; a key costs each stream one check at its handshake.
            "auth_mode": AuthMode.OFF})


@asynccontextmanager
async def provisioned(settings: Settings) -> AsyncIterator[None]:
    """The bench's topics and read-model schema, deleted afterwards."""
    assert settings.kafka_bootstrap_servers and settings.database_url
    await ensure_topics(settings, settings.kafka_bootstrap_servers)
    migrate(settings.database_url, settings.db_schema)
    try:
        yield
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            names = [n for n in await admin.list_topics() if n.startswith(settings.topic_prefix)]
            await admin.delete_topics(names)
        finally:
            await admin.close()
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(
                sql.Identifier(settings.db_schema)))


@asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[str]:
    """`python -m oee api` on the bench's port; yields its ws:// base URL once it answers."""
    env = {**os.environ, **settings.as_environment()}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would stall it
        proc = subprocess.Popen([sys.executable, "-m", "oee", "api"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        base = f"127.0.0.1:{settings.api_port}"
        try:
            await _until_healthy(f"http://{base}/health", proc, log)
            yield f"ws://{base}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


async def _until_healthy(url: str, proc: subprocess.Popen[bytes], log: IO[bytes],
                         timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the API exited: {log.read().decode()[-2000:]}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the API did not answer {url} within {timeout}s")


# --- one run -------------------------------------------------------------------------------


class Producer:
    """Produces events stamped at hand-over time (the latency's start)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer, self._topic = producer, topic
        self._states: dict[str, OrderState] = {}  # as the writer folds them: for the envelope

    async def send(self, events: Sequence[Event]) -> None:
        futures = []
        for event in events:
            stamped = replace(event, occurred_at=datetime.now(UTC))
            state = evolve(self._states.get(event.order_id) or initial_state(event.order_id),
                           event)
            self._states[event.order_id] = state
            assert state.status is not None
            futures.append(await self._producer.send(
                self._topic, CODEC.encode_event(stamped, status=state.status),
                key=event.order_id.encode()))
        await asyncio.gather(*futures)

    async def at_rate(self, events: Sequence[Event], rate: float) -> None:
        """Every event at `rate` per second overall, in slices every 10 ms."""
        start, sent, step = time.monotonic(), 0, max(1, round(rate / 100))
        while sent < len(events):
            await self.send(events[sent:sent + step])
            sent += step
            await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))  # pacing


async def follow(ws: ClientConnection, into: Latencies) -> None:
    """Record a latency per paced message until the server closes the stream.

    Seq 1 of every order is produced in one burst before the clients connect (so that each
    order exists): it is received, but its latency is not the paced rate's, so not counted.
    """
    try:
        async for text in ws:
            message = orjson.loads(text)
            if message["seq"] > 1:
                into.ms.append(latency_ms(message))
    except ConnectionClosed:
        pass
    code = ws.close_code or 1006
    into.closed[code] = into.closed.get(code, 0) + 1


async def run_once(base: str, producer: Producer, args: argparse.Namespace,
                   seed: int) -> dict[str, Any]:
    orders = list(HistoryMaker(seed=seed).orders(args.clients))
    per_order, everything = Latencies(), Latencies()
    async with _all_clients(base, args.all_clients, everything):
        await producer.send([history[0] for history in orders])  # every order accepted
        clients = await _order_clients(base, orders)
        tasks = [asyncio.create_task(follow(ws, per_order)) for ws in clients]
        rest = [event for rnd in _rounds(orders) for event in rnd]
        started = time.monotonic()
        await producer.at_rate(rest, args.rate)
        produced_s = time.monotonic() - started
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        await until(lambda: len(everything.ms) >= len(rest) * args.all_clients, 60,
                    "the all-orders clients")
    return {"events": len(rest), "produce_seconds": round(produced_s, 2),
            "achieved_rate": round(len(rest) / produced_s, 1),
            "order_streams": per_order.summary(), "all_streams": everything.summary()}


def _rounds(orders: list[list[Event]]) -> Iterator[list[Event]]:
    """Event 2 of every order, then event 3 of every order, ... (histories interleave)."""
    longest = max(len(history) for history in orders)
    for index in range(1, longest):
        yield [history[index] for history in orders if index < len(history)]


async def _order_clients(base: str, orders: list[list[Event]]) -> list[ClientConnection]:
    """One client per order, each having received seq 1 (so it is following live)."""
    async def one(order_id: str) -> ClientConnection:
        ws = await connect(f"{base}/api/orders/{order_id}/stream", open_timeout=60)
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
        assert first["seq"] == 1, first
        return ws

    clients: list[ClientConnection] = []
    for start in range(0, len(orders), 100):  # in waves: no accept-queue overflow
        wave = orders[start:start + 100]
        clients += await asyncio.gather(*(one(history[0].order_id) for history in wave))
    return clients


@asynccontextmanager
async def _all_clients(base: str, count: int, into: Latencies) -> AsyncIterator[None]:
    sockets = [await connect(f"{base}/api/orders/stream/all") for _ in range(count)]
    tasks = [asyncio.create_task(follow(ws, into)) for ws in sockets]
    try:
        yield
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- entrypoint ------------------------------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="per-order stream clients")
    parser.add_argument("--all-clients", type=int, default=1, help="all-orders stream clients")
    parser.add_argument("--rate", type=float, default=500.0, help="events per second in total")
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args(argv)


async def _bench(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with provisioned(settings), api_process(settings) as base:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                    acks="all", linger_ms=0)
        await producer.start()
        try:
            await _warm_up(base, Producer(producer, settings.topics.events))
            runs = [await run_once(base, Producer(producer, settings.topics.events), args, seed)
                    for seed in range(1, args.runs + 1)]
        finally:
            await producer.stop()
    return {"bench": "ws_delivery", "clients": args.clients, "all_clients": args.all_clients,
            "rate": args.rate, "runs": runs, "median": _medians(runs)}


async def _warm_up(base: str, producer: Producer) -> None:
    """Wait until the API's fan-out reads live: produce probes until one comes back."""
    async with connect(f"{base}/api/orders/stream/all") as ws:
        for _ in range(600):
            await producer.send(list(HistoryMaker(seed=999).order()[:1]))
            try:
                await asyncio.wait_for(ws.recv(), 0.1)
                return
            except TimeoutError:
                continue
    raise TimeoutError("the API's live feed never delivered a probe event")


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(kind: str, key: str) -> float | None:
        values = [run[kind][key] for run in runs if run[kind][key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {kind: {key: median(kind, key) for key in ("p50_ms", "p99_ms", "max_ms")}
            for kind in ("order_streams", "all_streams")}


def run_all(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The delivery-latency benchmark; what `python -m bench ws` reports."""
    args = _arguments(argv)
    with bench_settings() as settings:
        result: dict[str, Any] = asyncio.run(_bench(settings, args))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    print(json.dumps(run_all(argv), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
