"""Helpers of the projection tests: write events to the event store, read the read model back,
run the projector as a real process, and wait on conditions with deadlines.

Events are made by the pure aggregate (`bench.order_histories`) and written with the Codec
straight to `orders.events`, keyed by order id like the order agent writes them, so these
tests need neither the stream workers nor the API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from psycopg import sql

from domain.orders.events import Event
from domain.orders.evolve import fold
from oee.settings import Settings
from readmodel.rows import EVENT_COLUMNS, ORDER_COLUMNS, order_row
from schemas.codec import Codec
from tests.orders_support import WriterStatuses

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


# The simulated writer of each events topic (every test has its own topic): a test that
# produces a history in several calls gets each event stamped as one writer would stamp it.
_WRITERS: dict[str, WriterStatuses] = {}


async def produce(settings: Settings, events: Iterable[Event], codec: Codec | None = None,
                  values: Sequence[bytes] | None = None) -> int:
    """Append `events` to the event store in the given order, keyed by order id and stamped
    with their occurred-at time (what the order agent's clock reads when it appends them)."""
    codec = codec or Codec.load()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                linger_ms=10, max_batch_size=1 << 20, acks="all")
    await producer.start()
    count = 0
    try:
        futures = []
        statuses = _WRITERS.setdefault(settings.topics.events, WriterStatuses())
        for event in events:
            value = codec.encode_event(event, status=statuses.after(event))
            futures.append(await producer.send(
                settings.topics.events, value, key=event.order_id.encode(),
                timestamp_ms=int(event.occurred_at.timestamp() * 1000)))
            count += 1
        for value in values or ():
            futures.append(await producer.send(settings.topics.events, value, key=b"junk"))
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


def table_rows(settings: Settings, table: str, schema: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of a read-model table in a stable order, for row-for-row comparisons."""
    columns = {"orders": ORDER_COLUMNS, "order_events": EVENT_COLUMNS}[table]
    order_by = "order_id" if table == "orders" else "order_id, seq"
    query = sql.SQL("select {} from {} order by " + order_by).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(schema or settings.db_schema, table))
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(query).fetchall()


def scalar(settings: Settings, query: str, params: Sequence[Any] = (),
           schema: str | None = None) -> Any:
    """One value of a query on the read model; `{schema}` in `query` is the schema."""
    assert settings.database_url
    composed = sql.SQL(query).format(schema=sql.Identifier(schema or settings.db_schema))
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(composed, params).fetchone()
    return row[0] if row else None


def projected(settings: Settings, schema: str | None = None) -> int:
    """Records consumed by the projection of `schema` (sum of its stored next offsets)."""
    return int(scalar(settings, "select coalesce(sum(next_offset), 0) from "
                                "{schema}.projection_offsets", schema=schema))


async def wait_until(condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
                     what: str, timeout: float = DEADLINE_S, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class ProjectorProcess:
    """`python -m projections.projector` in its own process group, configured only by the
    environment, exactly as `oee run` starts it; `kill()` is a real SIGKILL."""

    def __init__(self, settings: Settings, log_path: Path, *args: str) -> None:
        self._settings = settings
        self._log_path = log_path
        self._args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProjectorProcess:
        env = {**os.environ, **self._settings.as_environment(), "LOG_LEVEL": "INFO",
               "PYTHONPATH": str(REPO_ROOT)}
        with open(self._log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "projections.projector", *self._args], env=env,
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM: the projector finishes its batch and exits 0."""
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]


def expected_orders(histories: Iterable[list[Event]]) -> dict[str, tuple[Any, ...]]:
    """The `orders` rows the pure fold makes of `histories`, as PostgreSQL returns them."""
    routing = ORDER_COLUMNS.index("routing")
    rows = {}
    for history in histories:
        row = list(order_row(fold(history)))
        if row[routing] is not None:
            row[routing] = orjson.loads(row[routing])  # jsonb comes back parsed
        rows[row[0]] = tuple(row)
    return rows


def assert_read_model_is_the_fold(settings: Settings, histories: list[list[Event]],
                                  schema: str | None = None) -> None:
    """Every order's row is its history folded; every event is in the audit log once."""
    expected = expected_orders(histories)
    actual = {row[0]: row for row in table_rows(settings, "orders", schema)}
    assert actual.keys() == expected.keys()
    different = [order_id for order_id in expected if actual[order_id] != expected[order_id]]
    assert not different, f"{len(different)} orders differ, e.g. {different[:3]}"
    events = table_rows(settings, "order_events", schema)
    seqs: dict[str, list[int]] = {}
    for row in events:
        seqs.setdefault(row[1], []).append(row[2])
    assert seqs == {h[0].order_id: [e.seq for e in h] for h in histories}
