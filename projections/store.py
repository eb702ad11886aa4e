"""The projector's side of PostgreSQL: offsets, order states and one transaction per batch.

Consumes a read-model schema (migrated: 0001 offsets, 0003 read model) and a projection name
(the `consumer_group` of its offsets); produces, per batch, ONE transaction that
  1. takes the schema's projection lock in shared mode (a rebuild's swap takes it exclusively,
     so no batch straddles a swap) and checks the schema is still the one it started on;
  2. loads what the batch folds onto: the `orders.seq` of every touched order in one query
     (an event at or below it is a duplicate); for an order with newer events, the state this
     store committed itself while that seq is unchanged, else the pure fold of the order's
     audit log (`order_events`, one query for all of them);
  3. lets the caller fold the batch onto them;
  4. writes the events (COPY into a staging table, then INSERT .. ON CONFLICT DO NOTHING),
     each touched order once (upsert guarded by `orders.seq < excluded.seq`), the rejects
     and the next offsets.
Rows and offsets commit together, so the projection is exactly once: after a crash, the
projector seeks to the offsets stored here and re-reads only what was never committed.

The schema is found by name in every statement; PostgreSQL re-plans prepared statements
when a schema is renamed, so after a swap the same statements reach the new tables.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from itertools import groupby
from operator import itemgetter
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.orders.evolve import fold as fold_events
from domain.orders.state import OrderState, is_terminal
from projections.batch import BatchRows, Snapshots
from readmodel.event_json import EventReader
from readmodel.rows import EVENT_COLUMNS, ORDER_COLUMNS
from schemas.writer_fence import NO_EPOCH

Connection = psycopg.AsyncConnection[Any]
_STAGED_EVENTS: Final = sql.Identifier("projector_staged_events")
_STAGED_ORDERS: Final = sql.Identifier("projector_staged_orders")


class SchemaSwapped(Exception):
    """The schema this projector writes to was swapped by a rebuild: reload the offsets."""


class SchemaMissing(Exception):
    """The read-model schema does not exist (not migrated yet, or dropped)."""


def projection_lock_key(schema: str) -> int:
    """The advisory-lock key that serialises batches (shared) against a swap (exclusive)."""
    return zlib.crc32(f"oee.projection:{schema}".encode())


async def connect(dsn: str, schema: str) -> Connection:
    """A connection for a projector: a transaction only where `transaction()` opens one;
    named in pg_stat_activity after the schema it writes."""
    name = f"oee-projector:{schema}"[:63]
    return await psycopg.AsyncConnection.connect(dsn, autocommit=True, application_name=name)


class ProjectionStore:
    """One projector's view of one schema. Not shared between tasks."""

    def __init__(self, conn: Connection, schema: str, group: str, topic: str) -> None:
        self._conn = conn
        self.schema = schema
        self.group = group
        self.topic = topic
        self._generation: int | None = None
        self._lock_key = projection_lock_key(schema)
        self._sql = _Statements(schema)
        self._recent = RecentStates()
        self._reader = EventReader()

    async def open(self) -> None:
        """Remember which schema (by oid) this store writes to and create its staging tables."""
        self._generation = await self._schema_oid()
        async with self._conn.transaction():
            for staged, table in ((_STAGED_EVENTS, "order_events"), (_STAGED_ORDERS, "orders")):
                await self._conn.execute(
                    sql.SQL("create temp table if not exists {} (like {}) on commit delete rows")
                    .format(staged, sql.Identifier(self.schema, table))
                )

    async def offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """The next offset to read per partition (0 for a partition never projected)."""
        return {p: offset for p, (offset, _) in (await self.positions(partitions)).items()}

    async def positions(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Per partition, the next offset to read and the writer fence's epoch there
        (0 and NO_EPOCH for a partition never projected)."""
        wanted = list(partitions)
        cur = await self._conn.execute(self._sql.offsets, (self.group, self.topic, wanted))
        stored = {partition: (offset, epoch) for partition, offset, epoch in await cur.fetchall()}
        return {partition: stored.get(partition, (0, NO_EPOCH)) for partition in wanted}

    async def apply(
        self,
        max_seqs: Mapping[str, int],
        fold: Callable[[Snapshots], BatchRows],
    ) -> BatchRows:
        """Load what the batch folds onto (`max_seqs`: each touched order's highest seq in
        it), fold, write rows and offsets: one transaction."""
        async with self._conn.transaction():
            await self._conn.execute("select pg_advisory_xact_lock_shared(%s)", (self._lock_key,))
            if await self._schema_oid() != self._generation:
                raise SchemaSwapped(f"schema {self.schema} was swapped by a rebuild")
            snapshots = await self._snapshots(max_seqs)
            rows = fold(snapshots)
            await self._write(rows)
        self._recent.keep(snapshots, (row[0] for row in rows.orders))  # committed: trust them
        return rows

    async def _snapshots(self, max_seqs: Mapping[str, int]) -> Snapshots:
        """Each touched order's stored seq and, where the batch goes beyond it, its state:
        the one this store committed itself if PostgreSQL still holds that seq, else the
        pure fold of the order's audit log."""
        snapshots = Snapshots()
        if not max_seqs:
            return snapshots
        cur = await self._conn.execute(self._sql.load_seqs, (list(max_seqs),))
        snapshots.stored = dict(await cur.fetchall())
        missing = [order_id for order_id, seq in snapshots.stored.items()
                   if max_seqs[order_id] > seq and not self._recent.lend(order_id, seq, snapshots)]
        if missing:
            async with self._conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(self._sql.load_histories, (missing,))
                rows = await cur.fetchall()
            for order_id, history in groupby(rows, key=itemgetter("order_id")):
                snapshots.states[order_id] = fold_events(self._reader.history(history))
        return snapshots

    async def _write(self, rows: BatchRows) -> None:
        conn = self._conn
        if rows.events:
            await _copy(conn, self._sql.copy_events, rows.events)
            await conn.execute(self._sql.insert_events)
        if rows.orders:
            await _copy(conn, self._sql.copy_orders, rows.orders)
            await conn.execute(self._sql.upsert_orders)
        if rows.rejects:
            async with conn.cursor() as cur:
                await cur.executemany(self._sql.insert_reject, rows.rejects)
        if rows.next_offsets:
            partitions = list(rows.next_offsets)
            offsets = [rows.next_offsets[p] for p in partitions]
            epochs = [rows.epochs.get(p, NO_EPOCH) for p in partitions]
            await conn.execute(
                self._sql.save_offsets, (self.group, self.topic, partitions, offsets, epochs)
            )

    async def _schema_oid(self) -> int:
        cur = await self._conn.execute(
            "select oid from pg_namespace where nspname = %s", (self.schema,)
        )
        row = await cur.fetchone()
        if row is None:
            raise SchemaMissing(f"schema {self.schema} does not exist: run the migrations")
        return int(row[0])


class RecentStates:
    """The states of the orders this store wrote last (bounded, oldest dropped first), so a
    batch need not re-fold them from the audit log: an order's events usually span batches.
    An order that reached its end is dropped: nothing but duplicates can follow."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[OrderState, str | None]] = OrderedDict()

    def lend(self, order_id: str, seq: int, snapshots: Snapshots) -> bool:
        """Put the remembered state in `snapshots` if it is the one stored at `seq`."""
        entry = self._entries.get(order_id)
        if entry is None or entry[0].seq != seq:
            return False
        state, routing = entry
        snapshots.states[order_id] = state
        if routing is not None:
            snapshots.routings[order_id] = routing
        return True

    def keep(self, snapshots: Snapshots, order_ids: Iterable[str]) -> None:
        for order_id in order_ids:
            state = snapshots.states[order_id]
            if is_terminal(state):
                self._entries.pop(order_id, None)
                continue
            self._entries[order_id] = (state, snapshots.routings.get(order_id))
            self._entries.move_to_end(order_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


async def _copy(conn: Connection, statement: sql.Composed, rows: Iterable[tuple[Any, ...]]) -> None:
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


class _Statements:
    """Every statement of the projector for one schema, composed once."""

    def __init__(self, schema: str) -> None:
        orders, events = sql.Identifier(schema, "orders"), sql.Identifier(schema, "order_events")
        offsets = sql.Identifier(schema, "projection_offsets")
        order_cols = sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS))
        event_cols = sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(column))
            for column in ORDER_COLUMNS[1:]
        )
        self.offsets = sql.SQL(
            "select partition, next_offset, writer_epoch from {} "
            "where consumer_group = %s and topic = %s and partition = any(%s)"
        ).format(offsets)
        self.load_histories = sql.SQL(
            "select order_id, seq, type, payload, event_id, occurred_at from {} "
            "where order_id = any(%s) order by order_id, seq"
        ).format(events)
        self.load_seqs = sql.SQL("select order_id, seq from {} where order_id = any(%s)").format(
            orders
        )
        self.copy_events = sql.SQL("copy {} ({}) from stdin").format(_STAGED_EVENTS, event_cols)
        self.copy_orders = sql.SQL("copy {} ({}) from stdin").format(_STAGED_ORDERS, order_cols)
        self.insert_events = sql.SQL(
            "insert into {0} ({1}) select {1} from {2} on conflict do nothing"
        ).format(events, event_cols, _STAGED_EVENTS)
        # The seq guard: a row is only ever replaced by the fold of a longer history.
        self.upsert_orders = sql.SQL(
            "insert into {0} as o ({1}) select {1} from {2} "
            "on conflict (order_id) do update set {3} where o.seq < excluded.seq"
        ).format(orders, order_cols, _STAGED_ORDERS, updates)
        self.insert_reject = sql.SQL(
            "insert into {} (topic, partition, \"offset\", order_id, seq, error, value) "
            "values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing"
        ).format(sql.Identifier(schema, "projection_rejects"))
        # Offsets only move forward, whoever writes them.
        # The fence epoch only moves forward either.
        self.save_offsets = sql.SQL(
            "insert into {0} as p (consumer_group, topic, partition, next_offset, writer_epoch) "
            "select %s, %s, partition, next_offset, writer_epoch "
            "from unnest(%s::int[], %s::bigint[], %s::bigint[]) "
            "as t(partition, next_offset, writer_epoch) "
            "on conflict (consumer_group, topic, partition) "
            "do update set next_offset = greatest(p.next_offset, excluded.next_offset), "
            "writer_epoch = greatest(p.writer_epoch, excluded.writer_epoch)"
        ).format(offsets)

