"""Projection benchmark: rebuild throughput and live projection lag. JSON on stdout.

- `rebuild`: N events (default 1,000,000: valid histories made by the pure aggregate, ~7
  events per order, Avro-encoded once) are written to a fresh `orders.events`, then the read
  model is rebuilt from offset 0 into a fresh schema by `projections.rebuild` (shadow worker
  processes, one per CPU, then the swap). Reported: events/s over the whole rebuild and the
  best 5-second rate of its catch-up.
- `live`: orders start at a steady rate (default 1,000 orders/s, their events spread over each
  order's life as the engine would append them) and are written in real time to another
  fresh topic while a live projector process (`python -m projections.projector`) follows it.
  Reported: how long each event took from being produced to being committed in PostgreSQL
  (sampled every 20 ms: p50/p99/max), and the lag in events (p50/p99/max).
Each scenario runs `runs` times (default 3); the figures are medians, every run is kept.

Services: KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL if set, else a throwaway local Kafka and
PostgreSQL on free ports. `main(argv)` is `python -m bench.projection_bench [--events N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from psycopg import sql

from bench.order_histories import HistoryMaker, interleaved
from bench.proc_cpu import Proc, by_role, tree
from bench.stack import free_ports
from domain.orders.evolve import recorded_statuses
from infra import process
from infra.schema_registry import registered_codec, schema_registry
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.rebuild import RebuildOptions, rebuild
from schemas.codec import Codec

Record = tuple[int, int, bytes, bytes]  # partition, timestamp ms, key, value
CHUNK_ORDERS = 5_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection_bench")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders-per-s", type=int, default=1_000)
    parser.add_argument("--live-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    report = run_all(events=args.events, runs=args.runs, orders_per_s=args.orders_per_s,
                     live_seconds=args.live_seconds)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def run_all(quick: bool = False, *, events: int | None = None, runs: int | None = None,
            orders_per_s: int = 1_000, live_seconds: float | None = None) -> dict[str, Any]:
    """Both scenarios on one pair of services; what `python -m bench projection` reports."""
    events = events or (100_000 if quick else 1_000_000)
    runs = runs or (1 if quick else 3)
    live_seconds = live_seconds or (10.0 if quick else 30.0)
    with services() as base:
        rebuilds = asyncio.run(rebuild_runs(base, events, runs))
        lives = [asyncio.run(live_run(base, orders_per_s, live_seconds)) for _ in range(runs)]
    return {
        "cpus": os.cpu_count(),
        "partitions": base.partitions,
        "rebuild": {"events": events, "median_events_per_s": _median(rebuilds, "events_per_s"),
                    "median_catch_up_events_per_s": _median(rebuilds, "catch_up_events_per_s"),
                    "median_projector_cpu_us_per_event": _median_cpu(rebuilds, "bench"),
                    "median_postgres_cpu_us_per_event": _median_cpu(rebuilds, "postgres"),
                    "runs": rebuilds},
        "live": {"orders_per_s": orders_per_s, "seconds": live_seconds,
                 "median_latency_p50_ms": _median(lives, "latency_p50_ms"),
                 "median_latency_p99_ms": _median(lives, "latency_p99_ms"),
                 "median_lag_p99_events": _median(lives, "lag_p99_events"),
                 "median_projector_cpu_us_per_event": _median_cpu(lives, "projector"),
                 "median_postgres_cpu_us_per_event": _median_cpu(lives, "postgres"),
                 "runs": lives},
    }


# --- rebuild ---------------------------------------------------------------------------------


async def rebuild_runs(base: Settings, events: int, runs: int) -> list[dict[str, Any]]:
    settings = fresh(base)
    await ensure_topics(settings, bootstrap(settings))
    codec = registered_codec(settings)
    records = [record for chunk in chunks_of_events(events, codec) for record in chunk]
    started = time.perf_counter()
    written = await write_topic(settings, records)
    write_s = time.perf_counter() - started
    del records
    results = []
    for run in range(runs):
        target = settings.model_copy(update={"db_schema": f"{settings.db_schema}_{run}"})
        rates: list[float] = []
        cpu_before = tree(os.getpid())
        final = await rebuild(target, RebuildOptions(),
                              lambda p: rates.append(p.events_per_s))
        cpu = _cpu_us_per_event(cpu_before, final.projected)
        took = (final.finished_at or time.time()) - final.started_at
        results.append({"events": final.projected, "seconds": round(took, 2),
                        "events_per_s": round(final.projected / took),
                        "catch_up_events_per_s": round(max(rates, default=0.0)),
                        "write_events_per_s": round(written / write_s),
                        "cpu_us_per_event": cpu})
        drop_schemas(target, target.db_schema, f"{target.db_schema}__previous")
    return results


def chunks_of_events(total: int, codec: Codec,
                     orders: int = CHUNK_ORDERS) -> Iterator[list[Record]]:
    """Encoded records, `orders` orders at a time, until `total` events."""
    maker, made = HistoryMaker(seed=2025), 0
    while made < total:
        events = interleaved(maker.orders(orders))[: total - made]
        made += len(events)
        yield [(-1, int(e.occurred_at.timestamp() * 1000), e.order_id.encode(),
                codec.encode_event(e, status=status))
               for e, status in zip(events, recorded_statuses(events), strict=True)]


async def write_topic(settings: Settings, records: list[Record]) -> int:
    """Pre-encoded records in batches built per partition (no per-record future)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings), acks=1,
                                max_batch_size=1 << 20, linger_ms=20)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.topics.events))
        return await _send_all(producer, settings.topics.events, partitions, records)
    finally:
        await producer.stop()


async def _send_all(producer: AIOKafkaProducer, topic: str, partitions: list[int],
                    records: list[Record]) -> int:
    batches: dict[int, Any] = {}
    pending = []
    for _, timestamp, key, value in records:
        partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        batch = batches.get(partition) or batches.setdefault(partition, producer.create_batch())
        if batch.append(key=key, value=value, timestamp=timestamp) is None:  # batch full
            pending.append(await producer.send_batch(batch, topic, partition=partition))
            batches[partition] = batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=timestamp)
    for partition, batch in batches.items():
        pending.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)
    return len(records)


# --- live ------------------------------------------------------------------------------------


async def live_run(base: Settings, orders_per_s: int, seconds: float) -> dict[str, Any]:
    settings = fresh(base)
    await ensure_topics(settings, bootstrap(settings))
    await asyncio.to_thread(_migrate, settings)
    maker = HistoryMaker(seed=7, orders_per_s=orders_per_s)
    codec = registered_codec(settings)
    events = interleaved(maker.orders(int(orders_per_s * seconds)))
    first = events[0].occurred_at
    due = [((e.occurred_at - first).total_seconds(), (-1, 0, e.order_id.encode(),
            codec.encode_event(e, status=status)))
           for e, status in zip(events, recorded_statuses(events), strict=True)]
    projector = _spawn_projector(settings)
    try:
        await _warm_up(settings)  # the projector's start-up is not projection lag
        cpu_before = tree(os.getpid())
        result = await _pace_and_watch(settings, due)
        result["cpu_us_per_event"] = _cpu_us_per_event(cpu_before, len(events))
    finally:
        process.terminate(projector.pid, timeout_s=15, child=projector)
        drop_schemas(settings, settings.db_schema)
    return {"events": len(events), **result}


async def _pace_and_watch(settings: Settings, due: list[tuple[float, Record]]) -> dict[str, Any]:
    """Produce each event when it is due; sample the projector's progress every 20 ms."""
    sent = _Sent()
    latencies: list[float] = []
    lags: list[int] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings), acks=1, linger_ms=2)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.topics.events))
        async with KafkaOffsets(bootstrap(settings)) as kafka, \
                await psycopg.AsyncConnection.connect(settings.database_url or "",
                                                      autocommit=True) as conn:
            watcher = _Watcher(conn, kafka, settings, sent, latencies, lags)
            await _pace(producer, settings.topics.events, partitions, due, sent, watcher)
            await producer.flush()
            deadline = time.monotonic() + 60
            while await watcher.sample() > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
    finally:
        await producer.stop()
    return {"latency_p50_ms": _pct(latencies, 50), "latency_p99_ms": _pct(latencies, 99),
            "latency_max_ms": _pct(latencies, 100), "lag_p50_events": _pct(lags, 50),
            "lag_p99_events": _pct(lags, 99), "lag_max_events": _pct(lags, 100)}


async def _warm_up(settings: Settings, timeout_s: float = 60.0) -> None:
    """Write a few orders and wait until the projector has committed them."""
    records = next(chunks_of_events(500, registered_codec(settings), orders=100))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings), acks=1)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.topics.events))
        await _send_all(producer, settings.topics.events, partitions, records)
    finally:
        await producer.stop()
    query = sql.SQL("select coalesce(sum(next_offset), 0) from {}").format(
        sql.Identifier(settings.db_schema, "projection_offsets"))
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(settings.database_url or "",
                                                     autocommit=True) as conn:
        while (await (await conn.execute(query)).fetchone() or (0,))[0] < len(records):
            if time.monotonic() > deadline:
                raise RuntimeError("the live projector did not start")
            await asyncio.sleep(0.05)


class _Sent:
    """When each record was produced, by partition and offset (known once acknowledged)."""

    def __init__(self) -> None:
        self.times: dict[int, dict[int, float]] = {}
        self.ends: dict[int, int] = {}

    def record(self, partition: int, at: float, delivery: asyncio.Future[Any]) -> None:
        offset = delivery.result().offset
        self.times.setdefault(partition, {})[offset] = at
        self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)


async def _pace(producer: AIOKafkaProducer, topic: str, partitions: list[int],
                due: list[tuple[float, Record]], sent: _Sent, watcher: _Watcher) -> None:
    start, index, last_sample = time.monotonic(), 0, 0.0
    while index < len(due):
        now = time.monotonic() - start
        while index < len(due) and due[index][0] <= now:
            _, _, key, value = due[index][1]
            index += 1
            partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            delivery = await producer.send(topic, value, key=key, partition=partition)
            delivery.add_done_callback(functools.partial(sent.record, partition, time.time()))
        if now - last_sample >= 0.02:
            last_sample = now
            await watcher.sample()
        await asyncio.sleep(0.005)  # the pacing tick: events are due every millisecond or so


class _Watcher:
    """Each sample: which offsets were committed since the last one, and how long ago they
    were produced (latency); and how many produced events are still to project (lag)."""

    def __init__(self, conn: Any, kafka: KafkaOffsets, settings: Settings, sent: _Sent,
                 latencies: list[float], lags: list[int]) -> None:
        self._conn, self._kafka, self._sent = conn, kafka, sent
        self._latencies, self._lags = latencies, lags
        self._seen: dict[int, int] = {}
        self._query = sql.SQL("select partition, next_offset from {}").format(
            sql.Identifier(settings.db_schema, "projection_offsets"))

    async def sample(self) -> int:
        cur = await self._conn.execute(self._query)
        positions: dict[int, int] = dict(await cur.fetchall())
        now = time.time()
        for partition, position in positions.items():
            times = self._sent.times.get(partition, {})
            for offset in range(self._seen.get(partition, 0), position):
                if offset in times:
                    self._latencies.append((now - times[offset]) * 1000)
            self._seen[partition] = position
        lag = sum(max(end - positions.get(p, 0), 0) for p, end in self._sent.ends.items())
        self._lags.append(lag)
        return lag


# --- services and helpers --------------------------------------------------------------------


@contextmanager
def services() -> Iterator[Settings]:
    """The environment's Kafka and PostgreSQL, or throwaway local ones on free ports."""
    with ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oee-bench-")))
        data.chmod(0o755)
        kafka_port, controller_port, pg_port, registry_port = free_ports(4)
        base = Settings().model_copy(update={
            "kafka_port": kafka_port, "kafka_controller_port": controller_port,
            "postgres_port": pg_port, "schema_registry_port": registry_port, "data_dir": data,
            "log_level": "WARNING"})
        kafka = stack.enter_context(kafka_bootstrap(base))
        dsn = stack.enter_context(postgres_dsn(base, durable=False))
        registry = stack.enter_context(schema_registry(base, dsn))
        yield base.model_copy(update={"kafka_bootstrap_servers": kafka, "database_url": dsn,
                                      "schema_registry_url": registry})


def fresh(base: Settings) -> Settings:
    """Topics, schema and projection name of their own."""
    tag = uuid.uuid4().hex[:8]
    return base.model_copy(update={"topic_prefix": f"bench{tag}.", "db_schema": f"bench_{tag}",
                                   "engine_id": f"bench-{tag}"})


def bootstrap(settings: Settings) -> str:
    assert settings.kafka_bootstrap_servers
    return settings.kafka_bootstrap_servers


def _migrate(settings: Settings) -> None:
    from projections.migrate import migrate

    assert settings.database_url
    migrate(settings.database_url, settings.db_schema)


def _spawn_projector(settings: Settings) -> Any:
    env = {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}
    log = Path(tempfile.gettempdir()) / f"{settings.engine_id}-projector.log"
    return process.spawn([sys.executable, "-m", "projections.projector"], log_path=log,
                         cwd=Path.cwd(), env=env, die_with_parent=True)


def drop_schemas(settings: Settings, *schemas: str) -> None:
    assert settings.database_url
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(
                sql.Identifier(schema)))


def _cpu_us_per_event(before: dict[int, Proc], events: int) -> dict[str, float]:
    """CPU time (utime+stime from /proc) spent since `before`, per event, by role:
    `projector` is the live projector process; `bench` is this process with its reaped
    children, i.e. the rebuild's shadow workers and its in-process finishing projector
    (plus, in the live scenario, the pacing producer and the sampler)."""
    spent = by_role(before, tree(os.getpid()), os.getpid())
    return {name: round(cpu / max(events, 1) * 1e6, 1) for name, cpu in sorted(spent.items())}


def _pct(values: list[float] | list[int], q: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(float(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]), 1)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def _median_cpu(runs: list[dict[str, Any]], role: str) -> float:
    return float(statistics.median(run["cpu_us_per_event"].get(role, 0.0) for run in runs))


if __name__ == "__main__":
    sys.exit(main())
