"""Rebuild the read model from offset 0 without downtime, then swap it in atomically.

Consumes the settings of a running engine (its topic, its live read-model schema, which keeps
serving queries and projecting meanwhile); produces a freshly folded read model in the live
schema's place, and `Progress` reports (events/s, lag, ETA) along the way:

1. preparing    live is migrated (a swap needs both at one migration level), then the shadow
                schema `<live>__shadow` is created fresh and migrated (its own
                `projection_offsets`, empty); the previous generation is dropped.
2. catching_up  the shadow's query indexes (none a constraint needs) are dropped, to be
                built once after the bulk load; worker processes (`python -m projections.projector --until-end`, one per CPU,
                each owning some partitions: throughput scales with cores, the fold is per
                partition) project into the shadow up to the end offsets seen when they
                started; rounds repeat while a round leaves more than `catch_up_lag` behind;
                then the dropped indexes are built again.
3. finishing    the live projection lock is taken exclusively: the live projector's next
                batch waits (queries do not). The shadow is projected up to the end offsets
                seen now, which are at or past the live projector's stored offsets.
4. swapping     one transaction renames live -> `<live>__previous`, shadow -> live (see
                `projections.swap`), then the lock is released. The live projector's waiting
                batch sees the schema changed, rolls back, reads the offsets of the new live
                schema (the shadow's) and carries on from there: nothing lost, nothing doubled.

Only one rebuild runs per live schema (a session advisory lock); a failed rebuild drops its
shadow and leaves the live read model untouched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from infra.services import bootstrap_servers, database_url
from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.migrate import MIGRATIONS_DIR, MigrationsDiffer, migrate
from projections.progress import Progress, RateMeter
from projections.projector import ProjectorOptions, project, projection_group
from projections.swap import (
    drop_schema,
    lock_projection,
    previous_schema,
    shadow_schema,
    swap,
    unlock_projection,
)

log = logging.getLogger(__name__)
OnProgress = Callable[[Progress], None]
CATCH_UP_LAG = 10_000
# The tables whose query indexes a rebuild builds after the bulk load, not during it.
DEFERRED_INDEX_TABLES = ("orders", "order_events")


class RebuildRunning(Exception):
    """Another rebuild of this read model is in progress."""


class RebuildFailed(Exception):
    """A shadow worker or the swap failed; the live read model was not touched."""


@dataclass(frozen=True, slots=True)
class RebuildOptions:
    workers: int | None = None  # shadow worker processes (default: one per CPU)
    catch_up_lag: int = CATCH_UP_LAG  # swap once a round leaves at most this many events behind
    max_rounds: int = 20
    poll_s: float = 0.5
    migrations: Path = MIGRATIONS_DIR  # the migrations this code ships (tests add their own)


def rebuild_lock_key(live: str) -> int:
    return zlib.crc32(f"oee.rebuild:{live}".encode())


async def rebuild_running(conn: psycopg.AsyncConnection[Any], live: str) -> bool:
    """Does any session (any process) hold the rebuild lock of `live`?"""
    cur = await conn.execute(
        "select 1 from pg_locks where locktype = 'advisory' and granted"
        " and classid = 0 and objid = %s and objsubid = 1",  # a bigint key below 2**32
        (rebuild_lock_key(live),),
    )
    return await cur.fetchone() is not None


async def rebuild(
    settings: Settings, options: RebuildOptions | None = None, on_progress: OnProgress | None = None
) -> Progress:
    """Rebuild `settings.db_schema` from the topic; return the final progress (phase done)."""
    options = options or RebuildOptions()
    dsn = database_url(settings)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as control, \
            KafkaOffsets(bootstrap_servers(settings)) as kafka:
        tracker = _Tracker(settings, control, kafka, on_progress)
        live = settings.db_schema
        if not await _try_lock(control, rebuild_lock_key(live)):
            raise RebuildRunning(f"a rebuild of {live} is already running")
        try:
            return await _rebuild(settings, options, control, kafka, tracker)
        except BaseException as error:
            tracker.emit("failed", error=repr(error))
            await drop_schema(control, shadow_schema(live))
            raise
        finally:
            await control.execute("select pg_advisory_unlock(%s)", (rebuild_lock_key(live),))


async def _rebuild(
    settings: Settings,
    options: RebuildOptions,
    control: psycopg.AsyncConnection[Any],
    kafka: KafkaOffsets,
    tracker: _Tracker,
) -> Progress:
    live, shadow = settings.db_schema, shadow_schema(settings.db_schema)
    tracker.emit("preparing")
    await drop_schema(control, previous_schema(live))
    await drop_schema(control, shadow)
    # Live first, as starting this code would: the swap carries live's ledger tables over,
    # so live must be at the shadow's migration level (the swap checks it).
    for schema in (live, shadow):
        await asyncio.to_thread(migrate, database_url(settings), schema, options.migrations)
    partitions = await kafka.partitions(settings.topics.events)
    workers = max(1, min(options.workers or os.cpu_count() or 1, len(partitions) or 1))
    deferred = await defer_indexes(control, shadow)
    for round_number in range(1, options.max_rounds + 1):
        await _run_workers(settings, shadow, partitions, workers, tracker, options.poll_s)
        lag = (await tracker.sample("catching_up")).lag
        log.info("rebuild round %d done, %d events behind", round_number, lag)
        if lag <= options.catch_up_lag:
            break
    await restore_indexes(control, deferred)
    await lock_projection(control, live)
    try:
        tracker.emit("finishing")
        await project(settings, ProjectorOptions(schema=shadow, until_end=True))
        await tracker.sample("swapping")
        try:
            await swap(control, live, shadow)
        except MigrationsDiffer as error:  # live was migrated by other code meanwhile
            raise RebuildFailed(str(error)) from error
    finally:
        await unlock_projection(control, live)
    tracker.schema = live
    return await tracker.sample("done", finished=True)


async def _run_workers(
    settings: Settings,
    shadow: str,
    partitions: list[int],
    workers: int,
    tracker: _Tracker,
    poll_s: float,
) -> None:
    """One catch-up round: `workers` processes project their partitions up to the end."""
    env = {**os.environ, **settings.as_environment()}
    procs: list[tuple[asyncio.subprocess.Process, IO[bytes]]] = []
    try:
        for index in range(workers):
            mine = ",".join(str(p) for p in partitions[index::workers])
            log_file: IO[bytes] = tempfile.TemporaryFile()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "projections.projector", "--schema", shadow,
                "--partitions", mine, "--until-end",
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
            )
            procs.append((proc, log_file))
        waiting = [asyncio.ensure_future(proc.wait()) for proc, _ in procs]
        while not all(task.done() for task in waiting):
            await asyncio.wait(waiting, timeout=poll_s)
            await tracker.sample("catching_up")
        for proc, stderr in procs:
            if proc.returncode != 0:
                stderr.seek(0)
                tail = stderr.read()[-2000:].decode(errors="replace")
                raise RebuildFailed(f"shadow worker exited with {proc.returncode}: {tail}")
    finally:
        for proc, stderr in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            stderr.close()


async def defer_indexes(conn: psycopg.AsyncConnection[Any], schema: str) -> list[str]:
    """Drop the indexes of `schema`'s projection tables that no constraint needs (the
    query indexes of `orders`), returning their definitions for `restore_indexes`.

    Bulk loading into a table, then indexing it once, costs PostgreSQL far less than
    keeping every index current row by row. The constraints' indexes stay: the projection's
    seq lookups and its exactly-once guards (primary keys, unique (order_id, seq)) need them.
    """
    cur = await conn.execute(
        "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
        "from pg_index i join pg_class t on t.oid = i.indrelid "
        "join pg_namespace n on n.oid = t.relnamespace "
        "where n.nspname = %s and t.relname = any(%s) "
        "and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid) "
        "order by 1",
        (schema, list(DEFERRED_INDEX_TABLES)),
    )
    found = await cur.fetchall()
    for name, _ in found:
        await conn.execute(sql.SQL("drop index {}").format(sql.SQL(name)))
    return [definition for _, definition in found]


async def restore_indexes(conn: psycopg.AsyncConnection[Any], definitions: list[str]) -> None:
    """Build again, once, the indexes `defer_indexes` dropped."""
    for definition in definitions:
        await conn.execute(definition)


async def _try_lock(conn: psycopg.AsyncConnection[Any], key: int) -> bool:
    cur = await conn.execute("select pg_try_advisory_lock(%s)", (key,))
    row = await cur.fetchone()
    return bool(row and row[0])


class _Tracker:
    """Samples the shadow's stored offsets against the topic's end and reports progress."""

    def __init__(
        self,
        settings: Settings,
        conn: psycopg.AsyncConnection[Any],
        kafka: KafkaOffsets,
        on_progress: OnProgress | None,
    ) -> None:
        self.schema = shadow_schema(settings.db_schema)
        self._topic = settings.topics.events
        self._group = projection_group(settings)
        self._conn, self._kafka, self._on_progress = conn, kafka, on_progress
        self._meter = RateMeter()
        self.last = Progress("preparing", self.schema, 0, 0, 0.0, time.time())

    def emit(self, phase: str, **changes: Any) -> Progress:
        self.last = replace(self.last, phase=phase, schema=self.schema, **changes)
        if self._on_progress is not None:
            self._on_progress(self.last)
        return self.last

    async def sample(self, phase: str, *, finished: bool = False) -> Progress:
        projected = await projected_events(self._conn, self.schema, self._group, self._topic)
        end = sum((await self._kafka.end_offsets(self._topic)).values())
        rate = self._meter.add(projected)
        return self.emit(phase, projected=projected, end=end, events_per_s=rate,
                         finished_at=time.time() if finished else None)


async def projected_events(
    conn: psycopg.AsyncConnection[Any], schema: str, group: str, topic: str
) -> int:
    """The sum of `schema`'s stored next offsets: how many records it has consumed."""
    cur = await conn.execute(
        sql.SQL(
            "select coalesce(sum(next_offset), 0) from {} where consumer_group = %s and topic = %s"
        ).format(sql.Identifier(schema, "projection_offsets")),
        (group, topic),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0
