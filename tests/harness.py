"""Test harness for the stream workers: real worker processes and a reader of the event store.

Workers run as subprocesses (`python -m streams.worker`) configured only through environment
variables, exactly as `oee run` starts them, so a test can SIGKILL one for real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from domain.orders.events import Event
from domain.orders.status import OrderStatus
from oee.settings import Settings
from infra.schema_registry import reading_codec
from schemas.errors import CodecError
from schemas.writer_fence import Fence, Verdict

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


class WorkerProcess:
    def __init__(self, settings: Settings, name: str = "worker") -> None:
        self.settings = settings
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return ARTIFACTS / f"{self.settings.engine_id}-{self.name}.log"

    def start(self) -> WorkerProcess:
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, **self.settings.as_environment(), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash looks like to Kafka."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def settled_on(self, partitions: int) -> bool:
        """Is the worker's last start-up or rebalance line the readiness of `partitions`?
        (Its timeline logs at INFO.)"""
        if not self.log_path.exists():
            return False
        lines = [line for line in self.log_path.read_bytes().splitlines()
                 if b'"streams.timeline"' in line]
        return bool(lines) and f"states of {partitions} partitions ready".encode() in lines[-1]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str,
                     interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_until_async(condition: Callable[[], Awaitable[bool]], timeout: float, what: str,
                           interval: float = 0.05) -> None:
    """`wait_until` for a condition that must await its answer (an HTTP request, a query)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class EventLog:
    """Follows `orders.events` from the beginning and keeps every event per order."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._codec = reading_codec(settings)
        self.by_order: dict[str, list[Event]] = defaultdict(list)
        # The status the writer put in each event's envelope, per order, in seq order.
        self.statuses: dict[str, list[OrderStatus | None]] = defaultdict(list)
        self.undecodable: list[tuple[int, int]] = []  # (partition, offset) of garbage records
        self.partition_of: dict[str, int] = {}  # order id -> its partition of orders.events
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventLog:
        self._consumer = AIOKafkaConsumer(
            self._settings.topics.events, bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
            fetch_max_wait_ms=20)
        await self._consumer.start()
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self) -> None:
        fences: dict[int, Fence] = {}
        async for record in self._consumer:
            # A worker's claim, or a deposed writer's late event, is not part of the history.
            fence = fences.setdefault(record.partition, Fence())
            if fence.judge(record.offset, record.headers) is not Verdict.EVENT:
                continue
            try:
                envelope = self._codec.decode_envelope(record.value)
            except CodecError:  # a test put garbage into the store on purpose
                self.undecodable.append((record.partition, record.offset))
                continue
            self.by_order[envelope.event.order_id].append(envelope.event)
            self.statuses[envelope.event.order_id].append(envelope.status)
            self.partition_of[envelope.event.order_id] = record.partition

    def types(self, order_id: str) -> list[str]:
        return [type(e).__name__ for e in self.by_order.get(order_id, [])]

    def terminal(self, order_id: str) -> Event | None:
        from domain.orders.events import TERMINAL_EVENTS
        events = self.by_order.get(order_id, [])
        return events[-1] if events and isinstance(events[-1], TERMINAL_EVENTS) else None

    def all_terminal(self, order_ids: Iterable[str]) -> bool:
        return all(self.terminal(o) is not None for o in order_ids)


@asynccontextmanager
async def edge(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One API instance in-process: its lifespan opens (and finally closes) its producer."""
    from oee.api_bootstrap import bootstrap

    app = bootstrap(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield client


@asynccontextmanager
async def workers(settings: Settings, count: int = 1) -> AsyncIterator[list[WorkerProcess]]:
    """`count` stream workers in one consumer group, stopped (or reaped) afterwards."""
    started = [WorkerProcess(settings, f"worker{i}").start() for i in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def assert_one_clean_history(log: EventLog, order_id: str) -> None:
    """seq 1..n with no gap, and exactly one terminal event, which is the last."""
    events = log.by_order[order_id]
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"{order_id}: seq {seqs}"
    from domain.orders.events import TERMINAL_EVENTS

    terminal = [e for e in events if isinstance(e, TERMINAL_EVENTS)]
    assert len(terminal) == 1 and terminal[0] is events[-1], f"{order_id}: {log.types(order_id)}"
