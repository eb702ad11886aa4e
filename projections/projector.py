"""The projector: a plain aiokafka consumer that folds `orders.events` into PostgreSQL.

Consumes `settings.topics.events` (every partition, or the ones it is given) from the offsets
stored in the read-model schema's `projection_offsets` (0 where none are stored); produces the
`orders` and `order_events` rows of that schema, exactly once: the records gathered for one
batch (what arrives within PROJECTOR_LINGER_MS of the first, at most PROJECTOR_BATCH_EVENTS of
them, so live load does not pay a transaction per two or three events) are folded with the
pure `evolve` and written in ONE transaction together with the batch's next offsets (see
`projections.store`). Not a Faust agent: an agent acks a message whose handler raised
(docs/pitfalls.md, "The projector"), which would skip rows on a PostgreSQL error.

A PostgreSQL outage is waited out: the projector retries with a capped backoff and, once the
database answers again, seeks back to the stored offsets, so nothing is skipped or doubled.
A rebuild's swap is noticed inside the batch transaction (the schema is another one now):
the projector then re-reads the offsets of the swapped-in schema and carries on from there.

`run_projector(settings)` is what `oee projector` runs; `python -m projections.projector`
runs it in its own process (settings from the environment), which the rebuild uses for its
shadow workers (`--schema`, `--partitions`, `--until-end`) and the crash tests kill.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.fetch_pacing import FetchPacing, pace_consumer
from infra.schema_registry import reading_codec
from infra.services import bootstrap_servers, database_url
from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.batch import BatchRows, decode_batch
from projections.metrics import ProjectorTelemetry
from schemas.writer_fence import Fence
from projections.store import ProjectionStore, SchemaMissing, SchemaSwapped, connect
from schemas.codec import Codec
from telemetry.http import MetricsServer
from telemetry.logs import configure

log = logging.getLogger(__name__)

FETCH_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
MAX_RECORDS = 20_000


def projection_group(settings: Settings) -> str:
    """The projection's name in `projection_offsets.consumer_group` (one per engine)."""
    return f"{settings.engine_id}.projector"


@dataclass(frozen=True, slots=True)
class ProjectorOptions:
    """What to project where. The defaults are the live projector's."""

    schema: str | None = None  # default: settings.db_schema
    partitions: tuple[int, ...] | None = None  # default: every partition of the topic
    until_end: bool = False  # stop once the end offsets seen at start are projected
    max_records: int = MAX_RECORDS  # at most per batch (= per transaction)
    # None: from the settings (PROJECTOR_LINGER_MS, PROJECTOR_BATCH_EVENTS,
    # PROJECTOR_FETCH_MAX_WAIT_MS); see `resolved`.
    linger_ms: int | None = None  # gather records this long after the first, then commit
    batch_events: int | None = None  # ... or commit as soon as this many are gathered
    fetch_max_wait_ms: int | None = None  # the most a busy fetch waits to gather its bytes

    def resolved(self, settings: Settings) -> ProjectorOptions:
        """These options with every unset one taken from `settings`."""
        return replace(
            self,
            linger_ms=_first(self.linger_ms, settings.projector_linger_ms),
            batch_events=min(_first(self.batch_events, settings.projector_batch_events),
                             self.max_records),
            fetch_max_wait_ms=_first(self.fetch_max_wait_ms,
                                     settings.projector_fetch_max_wait_ms),
        )


def _first(value: int | None, default: int) -> int:
    return default if value is None else value


@dataclass(slots=True)
class ProjectorStats:
    events: int = 0
    duplicates: int = 0
    rejects: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, rows: BatchRows) -> None:
        self.events += len(rows.events)
        self.duplicates += rows.duplicates
        self.rejects += len(rows.rejects)
        self.batches += 1

    def rate(self) -> float:
        return self.events / max(time.monotonic() - self.started, 1e-9)


def run_projector(settings: Settings, options: ProjectorOptions | None = None,
                  *, serve_metrics: bool = True) -> ProjectorStats:
    """Project in the foreground until SIGTERM / SIGINT (or, with `until_end`, caught up),
    with the loopback /metrics and /health port of PROJECTOR_METRICS_PORT.

    What `oee projector` and `python -m projections.projector` run.
    """
    return asyncio.run(_until_signalled(settings, options or ProjectorOptions(), serve_metrics))


async def _until_signalled(settings: Settings, options: ProjectorOptions,
                           serve_metrics: bool) -> ProjectorStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    telemetry = ProjectorTelemetry(projection_group(settings))
    if serve_metrics:
        async with MetricsServer(telemetry.registry, telemetry.health,
                                 settings.projector_metrics_port, "projector"):
            stats = await project(settings, options, stop=stop, telemetry=telemetry)
    else:
        stats = await project(settings, options, stop=stop, telemetry=telemetry)
    log.info("projector stopped after %d events (%d duplicates, %d rejects)",
             stats.events, stats.duplicates, stats.rejects)
    return stats


async def project(
    settings: Settings,
    options: ProjectorOptions | None = None,
    *,
    stop: asyncio.Event | None = None,
    telemetry: ProjectorTelemetry | None = None,
) -> ProjectorStats:
    """Project until `stop` is set (or, with `until_end`, until caught up)."""
    options = (options or ProjectorOptions()).resolved(settings)
    stop = stop or asyncio.Event()
    telemetry = telemetry or ProjectorTelemetry(projection_group(settings))
    runner = _Runner(settings, options, reading_codec(settings), stop, telemetry)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=None,  # offsets live in PostgreSQL, next to the rows
        enable_auto_commit=False,
        # Every partition is sought explicitly; an offset out of range means the topic was
        # recreated or truncated: fail loudly (a rebuild is due) rather than skip or repeat.
        auto_offset_reset="none",
        fetch_max_wait_ms=settings.fetch_idle_max_wait_ms,
        fetch_max_bytes=FETCH_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
    )
    # While events flow a batch gathers at the broker (PROJECTOR_FETCH_MIN_BYTES within
    # PROJECTOR_FETCH_MAX_WAIT_MS); the first event after a pause is answered at once.
    pace_consumer(consumer, FetchPacing(settings.projector_fetch_min_bytes,
                                        options.fetch_max_wait_ms or 0,
                                        settings.fetch_idle_max_wait_ms))
    await consumer.start()
    telemetry.progress.highwater = lambda topic, p: consumer.highwater(TopicPartition(topic, p))
    try:
        return await runner.run(consumer)
    finally:
        await consumer.stop()


class _Runner:
    """One projector's loop: connect, seek to the stored offsets, fold batches; on a lost
    connection wait and start over, on a swap start over at once."""

    def __init__(
        self, settings: Settings, options: ProjectorOptions, codec: Codec, stop: asyncio.Event,
        telemetry: ProjectorTelemetry,
    ) -> None:
        self.topic = settings.topics.events
        self.schema = options.schema or settings.db_schema
        self.group = projection_group(settings)
        self.dsn = database_url(settings)
        self.bootstrap = bootstrap_servers(settings)
        self.options = options
        self.codec = codec
        self.stop = stop
        self.stats = ProjectorStats()
        self.fences: dict[int, Fence] = {}  # per partition, from the stored epochs (_seek)
        self.telemetry = telemetry
        self._last_log = time.monotonic()

    async def run(self, consumer: AIOKafkaConsumer) -> ProjectorStats:
        tps = await self._assign(consumer)
        targets = await consumer.end_offsets(tps) if self.options.until_end else None
        delay = RETRY_MIN_S
        while not self.stop.is_set():
            try:
                conn = await connect(self.dsn, self.schema)
            except psycopg.OperationalError as error:
                delay = await self._wait_out(error, delay)
                continue
            try:
                async with conn:
                    store = ProjectionStore(conn, self.schema, self.group, self.topic)
                    await store.open()
                    positions = await self._seek(consumer, store, tps)
                    await self.telemetry.metrics.count(conn, self.schema)
                    self.telemetry.connected = True
                    delay = RETRY_MIN_S
                    if await self._project(consumer, store, positions, targets):
                        break
            except SchemaSwapped as swapped:
                log.info("%s; reloading its offsets", swapped)
            except (psycopg.OperationalError, SchemaMissing) as error:
                self.telemetry.connected = False
                delay = await self._wait_out(error, delay)
        return self.stats

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Assign the wanted partitions of the topic, waiting for the topic to exist."""
        delay = RETRY_MIN_S
        async with KafkaOffsets(self.bootstrap) as kafka:
            while not (partitions := set(await kafka.partitions(self.topic))):
                log.warning("topic %s does not exist yet; waiting", self.topic)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        wanted = self.options.partitions
        chosen = sorted(partitions if wanted is None else set(wanted) & partitions)
        tps = [TopicPartition(self.topic, p) for p in chosen]
        consumer.assign(tps)
        self.telemetry.progress.assigned((tp.topic, tp.partition) for tp in tps)
        return tps

    async def _seek(
        self, consumer: AIOKafkaConsumer, store: ProjectionStore, tps: list[TopicPartition]
    ) -> dict[int, int]:
        """Seek every partition to its stored offset: what was never committed is re-read,
        judged by the writer fence as it stood at that offset."""
        stored = await store.positions(tp.partition for tp in tps)
        self.fences = {p: Fence(epoch) for p, (_, epoch) in stored.items()}
        positions = {p: offset for p, (offset, _) in stored.items()}
        for tp in tps:
            consumer.seek(tp, positions[tp.partition])
            self.telemetry.progress.positioned(tp.topic, tp.partition, positions[tp.partition])
        return positions

    async def _project(
        self,
        consumer: AIOKafkaConsumer,
        store: ProjectionStore,
        positions: dict[int, int],
        targets: dict[TopicPartition, int] | None,
    ) -> bool:
        """Fold batches until `stop`; True once caught up with `targets` (if any)."""
        codec, options = self.codec, self.options
        while not self.stop.is_set():
            if targets is not None and all(positions[tp.partition] >= end
                                           for tp, end in targets.items()):
                return True
            records = await self._gather(consumer)
            if not records:
                continue
            batch = decode_batch(codec, self.topic, records, self.fences)
            metrics, began = self.telemetry.metrics, time.monotonic()
            rows = await store.apply(batch.max_seqs, metrics.fold(codec, batch))
            metrics.committed(rows, time.monotonic() - began)
            positions.update(rows.next_offsets)
            for partition, next_offset in rows.next_offsets.items():
                self.telemetry.progress.positioned(self.topic, partition, next_offset)
            self.stats.add(rows)
            self._log_progress()
        return False

    async def _gather(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """One transaction's records: those of the first fetch that brings any and of the
        ones that follow within `linger_ms`, until `batch_events` are gathered.

        Under live load records arrive a few at a time; a transaction per record landing
        would pay its fixed statements for every two or three events. The fetch itself
        gathers them at the broker (PROJECTOR_FETCH_MIN_BYTES, within its max wait), so the
        default `linger_ms` is 0; a linger gathers further fetches in the client, adding at
        most `linger_ms` of latency. Each partition's records stay in offset order.
        """
        options = self.options
        limit = options.max_records
        records: dict[TopicPartition, list[Any]] = await consumer.getmany(
            timeout_ms=200, max_records=limit)
        count = sum(map(len, records.values()))
        assert options.linger_ms is not None and options.batch_events is not None  # resolved
        deadline = time.monotonic() + options.linger_ms / 1000
        while 0 < count < options.batch_events and not self.stop.is_set():
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            more = await consumer.getmany(timeout_ms=left_ms, max_records=limit - count)
            for tp, batch in more.items():
                records.setdefault(tp, []).extend(batch)
                count += len(batch)
        return records

    async def _wait_out(self, error: Exception, delay: float) -> float:
        """Log, sleep (or return early on stop), and return the next, longer delay."""
        log.warning("read model unavailable (%s); retrying in %.1fs", error, delay)
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=delay)
        except TimeoutError:
            pass
        return min(delay * 2, RETRY_MAX_S)

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10:
            self._last_log = now
            stats = self.stats
            log.info("projected %d events (%.0f/s), %d duplicates, %d rejects into %s",
                     stats.events, stats.rate(), stats.duplicates, stats.rejects, self.schema)


# --- `python -m projections.projector` --------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projections.projector",
        description="Fold orders.events into the read model (settings from the environment).",
    )
    parser.add_argument("--schema", help="read-model schema (default: DB_SCHEMA)")
    parser.add_argument("--partitions", help="comma-separated partitions (default: all)")
    parser.add_argument("--until-end", action="store_true",
                        help="exit once the end offsets seen at start are projected")
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    settings = Settings()
    configure(settings.log_level, settings.log_format, "projector")
    partitions = (tuple(int(p) for p in args.partitions.split(",") if p)
                  if args.partitions else None)
    # A rebuild's shadow worker reads a backlog: its batches are as big as a fetch allows.
    options = ProjectorOptions(schema=args.schema, partitions=partitions,
                               until_end=args.until_end, max_records=args.max_records,
                               batch_events=args.max_records if args.until_end else None)
    # A rebuild's shadow projectors (another schema, or up to an end) serve no metrics: the
    # live projector is the one whose figures (orders by status) stand for the engine.
    run_projector(settings, options,
                  serve_metrics=args.schema is None and not args.until_end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
