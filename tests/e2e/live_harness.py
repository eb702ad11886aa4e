"""Harness for the live edge's tests: a real uvicorn server, an event writer, the projector,
and a WebSocket reader. Used by tests/integration/test_ws_streams.py and the dashboard test.

Events are made by the pure aggregate (`bench.order_histories.HistoryMaker`: decide/evolve),
encoded with the engine's codec and produced to the test's `orders.events`, so the streams
see exactly what the order agent would write, without running the stream workers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.live.edge import LiveEdge
from domain.orders import Event, evolve, initial_state
from oee.settings import Settings
from projections.projector import project
from schemas.codec import Codec
from tests.orders_support import WriterStatuses

CODEC = Codec.load()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """An app served on a local port."""

    url: str  # ws://127.0.0.1:port
    app: FastAPI

    @property
    def live(self) -> LiveEdge:
        edge: LiveEdge | None = self.app.state.edge.live
        assert edge is not None, "the app was built without its live streams"
        return edge

    @property
    def http(self) -> str:
        return "http" + self.url.removeprefix("ws")

    def subscribers(self) -> int:
        return self.live.fanout.subscribers


@asynccontextmanager
async def serving(app: FastAPI, timeout: float = 30.0) -> AsyncIterator[Served]:
    """Serve `app` with uvicorn on a free port in this event loop, once its live feed reads
    (so no test event can predate it by accident)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                            log_level="warning", ws_ping_interval=20.0, ws_ping_timeout=20.0)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), timeout, "uvicorn to start")
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped at start-up")
        served = Served(f"ws://127.0.0.1:{port}", app)
        await served.live.fanout.ready()
        yield served
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class EventWriter:
    """Produces events to `orders.events` as the order agent would (key: the order id)."""

    def __init__(self, settings: Settings) -> None:
        self._statuses = WriterStatuses()  # what the order agent would write beside each event
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                          acks="all", linger_ms=0)
        self._topic = settings.topics.events
        self.first_sent: dict[str, float] = {}  # order id -> monotonic time seq 1 was acked

    async def __aenter__(self) -> EventWriter:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, event: Event, timestamp_ms: int | None = None) -> tuple[int, int]:
        """Produce and wait for the ack; returns (partition, offset)."""
        meta = await self._producer.send_and_wait(
            self._topic, CODEC.encode_event(event, status=self._statuses.after(event)),
            key=event.order_id.encode(),
            timestamp_ms=timestamp_ms)
        if event.seq == 1:
            self.first_sent[event.order_id] = time.monotonic()
        return meta.partition, meta.offset

    async def send_all(self, events: Iterable[Event]) -> None:
        """Produce many without waiting for each ack in turn (one order's stay in order)."""
        futures = [await self._producer.send(
            self._topic, CODEC.encode_event(event, status=self._statuses.after(event)),
            key=event.order_id.encode()) for event in events]
        await asyncio.gather(*futures)


@asynccontextmanager
async def projecting(settings: Settings) -> AsyncIterator[None]:
    """The real projector folding the test's events into its read model, while the block runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(project(settings, stop=stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@dataclass
class Received:
    """What one WebSocket client saw: every message, then the close code and reason."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    code: int | None = None
    reason: str = ""

    @property
    def seqs(self) -> list[int]:
        return [message["seq"] for message in self.messages]


async def read_stream(url: str, *, limit: int | None = None, timeout: float = 60.0,
                      received: Received | None = None) -> Received:
    """Read `url` until the server closes it (or `limit` messages arrived: then we close)."""
    async with asyncio.timeout(timeout):
        async with connect(url, open_timeout=timeout) as ws:
            return await read_until_closed(ws, limit=limit, received=received)


async def read_until_closed(ws: ClientConnection, *, limit: int | None = None,
                            received: Received | None = None) -> Received:
    received = received if received is not None else Received()
    try:
        async for text in ws:
            received.messages.append(orjson.loads(text))
            if limit is not None and len(received.messages) >= limit:
                return received
    except ConnectionClosed:
        pass
    received.code, received.reason = ws.close_code, ws.close_reason or ""
    return received


@asynccontextmanager
async def stalled_client(url: str, port: int) -> AsyncIterator[ClientConnection]:
    """A client that reads nothing until told to: a tiny receive buffer and a one-frame
    queue, so the server's sends back up after a few kilobytes instead of megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    async with connect(url, sock=sock, max_queue=1) as ws:
        yield ws


def expected(history: list[Event]) -> list[tuple[int, str, str]]:
    """(seq, type, status after) of each event, folded by the pure aggregate."""
    state, rows = initial_state(history[0].order_id), []
    for event in history:
        state = evolve(state, event)
        rows.append((event.seq, type(event).__name__, str(state.status)))
    return rows


def seen(received: Received) -> list[tuple[int, str, str]]:
    return [(m["seq"], m["type"], m["status"]) for m in received.messages]
