"""Snapshots of the order writer's states: written now and then, read when a partition is taken.

Consumes the writer's loaded partitions (`OrderStates.loaded`) and produces, per partition,
records in `orders.snapshots` (compacted, key = the partition number, written to the partition
of the same number): the orders in flight as their events, the ended ones as ids, every
order's chain head (the hash of its last event), the `orders.events` offset the snapshot
covers and the fence's epoch there (`schemas.snapshots`). Reads the latest one back for
`OrderStates`, which folds only the events after it.

The heads are stored, not recomputed from the stored events: those are encoded again by this
writer (hashes null, the current schema version), so their bytes need not be the bytes the
hashes were taken over. A restored partition holds exactly the heads the fold of `[0, offset)`
holds: the ended orders' in its `TerminalIds`, the others' by order id (the next chain
checkpoint pins them all). A snapshot without
heads (v1) is not restored: the partition is folded whole rather than an order's chain broken.

A snapshot is written only of states that are exactly the fold of `[0, offset)`: every event
the writer appended is confirmed and nothing but its own records landed since it folded
(`PartitionStates.durable`), and no child's end is waiting for its report to the parent
to be stored (a fold after the snapshot would not see the end, so would not report again).
Then another writer's claim, if any, lies at or after `offset`,
so even a deposed writer's snapshot is true of the offsets it covers. One is due every
`every_events` events of the partition or `interval_s` seconds after the last (if something
happened). The encoding runs a slice at a time, yielding to the event loop in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from domain.orders.events import Event
from domain.orders.status import OrderStatus
from schemas.snapshots import SnapshotCodec, SnapshotRecord, SnapshotUnreadable
from streams.partition_fold import (
    Decode,
    History,
    PartitionStates,
    SnapshotMismatch,
)
from streams.terminal_ids import TerminalIds

log = logging.getLogger(__name__)

EncodeEvent = Callable[[Event, OrderStatus], bytes]
ENCODE_SLICE: Final = 25  # orders encoded between two yields to the event loop (~1 ms)
READ_TIMEOUT_S: Final = 30.0


def restore(snapshot: SnapshotRecord, decode: Decode, partition: int, *,
            lazy: bool = False) -> PartitionStates:
    """The states a snapshot holds, each order folded again from its events
    (`partition_fold.fold_stored`), every order's head as stored. `lazy`: the orders are
    left for their first touch or the loader's background pass (`PartitionStates.state_of`),
    so a takeover does not wait for them. SnapshotMismatch if it is not a snapshot of
    `partition`, carries no heads (v1), or (not `lazy`) an order's events do not fold."""
    if snapshot.partition != partition:
        raise SnapshotMismatch(f"a snapshot of partition {snapshot.partition} found in the "
                               f"place of {partition}'s")
    if not snapshot.heads_complete:
        raise SnapshotMismatch("the snapshot carries no chain heads (order_snapshot v1): "
                               "its orders in flight would start their chains again")
    try:
        terminal = TerminalIds(snapshot.terminal_uuids, snapshot.terminal_other,
                               snapshot.terminal_heads, snapshot.terminal_other_heads)
    except ValueError as exc:
        raise SnapshotMismatch(f"its ended orders: {exc}") from exc
    states = PartitionStates(terminal=terminal, quarantined=dict(snapshot.quarantined),
                             fence_epoch=snapshot.fence_epoch, events=snapshot.events,
                             snapshot_offset=snapshot.offset, decode=decode)
    for order_id, values, head in snapshot.orders:
        states.unrestored[order_id] = values
        if head is not None:
            states.heads[order_id] = head
    if not lazy:
        states.restore_all()
        states.restored.clear()
    return states


@dataclass(frozen=True, slots=True)
class Captured:
    """What a snapshot is made of, taken in one step from the live states."""

    partition: int
    offset: int
    fence_epoch: int
    events: int
    # (order id, its events with the status after each, its head)
    histories: tuple[tuple[str, tuple[tuple[Event, OrderStatus], ...], bytes | None], ...]
    quarantined: tuple[tuple[str, str], ...]
    terminal_uuids: tuple[bytes, ...]
    terminal_other: tuple[str, ...]
    terminal_heads: tuple[bytes, ...]
    terminal_other_heads: tuple[bytes, ...]


def capture(partition: int, states: PartitionStates) -> Captured | None:
    """The states' content now, if they are durable (else None: try later). Synchronous: no
    decision can slip in between the check and the copy."""
    if not states.durable() or states.end is None or states.reporting or states.lazy():
        return None
    histories: dict[str, History] = states.histories
    heads, terminal = states.heads, states.terminal
    return Captured(partition, states.end, states.fence_epoch, states.events,
                    tuple((o, tuple(h), heads.get(o)) for o, h in histories.items()),
                    tuple(states.quarantined.items()), tuple(terminal.runs()),
                    tuple(terminal.others()), tuple(terminal.heads()),
                    tuple(terminal.other_heads()))


@dataclass(frozen=True, slots=True)
class Encoded:
    """An order's events as the last snapshot encoded them (the event objects, their values)."""

    events: tuple[Event, ...]
    values: tuple[bytes, ...]


async def encode(captured: Captured, encode_event: EncodeEvent, writer: str,
                 taken_at_ms: int, known: dict[str, Encoded] | None = None) -> SnapshotRecord:
    """The snapshot record of what was captured, a slice of orders at a time. `known`: the
    partition's orders as its last snapshot encoded them; an event encoded then (the very
    same object: a partition folded again has new ones) is not encoded again. Updated to
    this snapshot's orders."""
    orders: list[tuple[str, tuple[bytes, ...], bytes | None]] = []
    fresh: dict[str, Encoded] = {}
    for at in range(0, len(captured.histories), ENCODE_SLICE):
        for order_id, history, head in captured.histories[at:at + ENCODE_SLICE]:
            encoded = _encoded(history, (known or {}).get(order_id), encode_event)
            fresh[order_id] = encoded
            orders.append((order_id, encoded.values, head))
        await asyncio.sleep(0)
    if known is not None:
        known.clear()
        known.update(fresh)
    return SnapshotRecord(captured.partition, captured.offset, captured.fence_epoch, writer,
                          taken_at_ms, captured.events, tuple(orders), captured.quarantined,
                          captured.terminal_uuids, captured.terminal_other,
                          captured.terminal_heads, captured.terminal_other_heads,
                          heads_complete=True)


def _encoded(history: tuple[tuple[Event, OrderStatus], ...], known: Encoded | None,
             encode_event: EncodeEvent) -> Encoded:
    """The history's values, reusing those of `known`'s events that are still its first."""
    reused = 0
    if known is not None:
        for (event, _), was in zip(history, known.events):
            if event is not was:
                break
            reused += 1
    values = (known.values[:reused] if known is not None else ()) + tuple(
        encode_event(event, status) for event, status in history[reused:])
    return Encoded(tuple(event for event, _ in history), values)


class SnapshotStore:
    """`orders.snapshots` on the broker: the latest snapshot of a partition, and a new one."""

    def __init__(self, bootstrap_servers: str, topic: str, codec: SnapshotCodec,
                 max_bytes: int) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._codec = codec
        self._max_bytes = max_bytes
        self._producer: AIOKafkaProducer | None = None

    def restore(self, snapshot: SnapshotRecord, decode: Decode) -> PartitionStates:
        return restore(snapshot, decode, snapshot.partition, lazy=True)

    async def latest(self, partition: int) -> SnapshotRecord | None:
        """The last record of the partition of `partition`'s number, decoded (None: none yet).
        SnapshotUnreadable if it is not one this worker can read."""
        value = await self._last_value(partition)
        if value is None:
            return None
        snapshot = self._codec.decode(value)
        if snapshot.partition != partition:
            raise SnapshotUnreadable(f"the last record of {self.topic}[{partition}] is a "
                                     f"snapshot of partition {snapshot.partition}")
        return snapshot

    async def write(self, snapshot: SnapshotRecord) -> int:
        """Append the snapshot (acks=all); returns its size in bytes."""
        value = self._codec.encode(snapshot)
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all",
                                              max_request_size=self._max_bytes)
            await self._producer.start()
        await self._producer.send_and_wait(self.topic, value,
                                           key=str(snapshot.partition).encode(),
                                           partition=snapshot.partition)
        return len(value)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _last_value(self, partition: int) -> bytes | None:
        tp = TopicPartition(self.topic, partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False,
                                    max_partition_fetch_bytes=self._max_bytes,
                                    fetch_max_bytes=self._max_bytes)
        await consumer.start()
        try:
            end = (await consumer.end_offsets([tp]))[tp]
            beginning = (await consumer.beginning_offsets([tp]))[tp]
            if end <= beginning:
                return None
            # Assigned and sought in one step (see streams.event_store: a fetch from the reset
            # position would be parked by the broker, and the seek would wait for it).
            consumer.assign([tp])
            consumer.seek(tp, end - 1)
            deadline = time.monotonic() + READ_TIMEOUT_S
            while time.monotonic() < deadline:
                batches = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
                for record in batches.get(tp, []):
                    value: bytes | None = record.value
                    return value
                if await consumer.position(tp) >= end:
                    return None  # the last offset was not a record (a transaction marker)
            raise TimeoutError(f"{self.topic}[{partition}]: no record within "
                               f"{READ_TIMEOUT_S:.0f} s")
        finally:
            await consumer.stop()


@dataclass(slots=True)
class _Written:
    offset: int
    at: float


@dataclass
class SnapshotWriter:
    """Writes a snapshot of each loaded partition when one is due (see the module doc)."""

    loaded: Callable[[], dict[int, PartitionStates]]
    store: SnapshotStore
    encode_event: EncodeEvent
    writer: str
    every_events: int
    interval_s: float
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    check_every_s: float = 1.0
    written: dict[int, _Written] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # the last snapshot's bytes
    # Per partition, its orders as the last snapshot encoded them (`encode`'s `known`).
    encoded: dict[int, dict[str, Encoded]] = field(default_factory=dict)

    async def run(self) -> None:
        if self.every_events <= 0:
            return  # snapshots are off
        while True:
            await asyncio.sleep(self.check_every_s)
            await self.write_due()

    async def write_due(self) -> int:
        """Write the snapshots due now; returns how many were written."""
        count = 0
        loaded = self.loaded()
        for gone in set(self.encoded) - set(loaded):
            del self.encoded[gone]
        for partition, states in sorted(loaded.items()):
            if not self._due(partition, states):
                continue
            captured = capture(partition, states)
            if captured is None:
                continue  # appends on their way, or someone else's records: next time
            try:
                await self.write(captured)
                count += 1
            except Exception:  # a cache: the next attempt comes with the next check
                log.exception("partition %d: the snapshot at offset %d was not written",
                              partition, captured.offset)
        return count

    async def write(self, captured: Captured) -> None:
        started = time.monotonic()
        record = await encode(captured, self.encode_event, self.writer, self.clock_ms(),
                              self.encoded.setdefault(captured.partition, {}))
        size = await self.store.write(record)
        self.written[captured.partition] = _Written(captured.offset, time.monotonic())
        self.sizes[captured.partition] = size
        log.info("partition %d: snapshot at offset %d written (%d orders in flight, %d ended, "
                 "%d bytes) in %.0f ms", captured.partition, captured.offset,
                 len(captured.histories),
                 sum(len(r) for r in captured.terminal_uuids) // 16
                 + len(captured.terminal_other), size, (time.monotonic() - started) * 1000)

    def _due(self, partition: int, states: PartitionStates) -> bool:
        if states.end is None:
            return False
        last = self.written.get(partition)
        if last is None or last.offset > states.end:  # first seen, or folded anew since
            last = self.written[partition] = _Written(states.snapshot_offset or 0,
                                                      time.monotonic())
        since = states.end - last.offset
        return since >= self.every_events or (
            since > 0 and time.monotonic() - last.at >= self.interval_s)
