"""The order agent's in-memory state, one map per assigned partition, folded from the event store.

Consumes the raw records of `orders.events[p]` (`EventStoreReader`) and produces each order's
folded state. Loading starts as soon as a partition is assigned (so the watchdog re-arms timers
for stalled orders even if no command ever arrives for them) and the agent awaits it before
deciding anything for that partition.

A rebalance moves only what it moves (`rebalance`): the consumer protocol revokes every
partition and assigns them again, but the states of a partition this worker keeps are kept,
and only partitions that are new to it are folded. A kept partition is checked first: if
anything was appended to `orders.events[p]` past the last record this writer knows of (another
worker owned it in between and claimed it), the states are stale and the partition is claimed
and folded anew. Partitions that left are forgotten: their next owner folds them.

Taking a partition starts with a claim (`schemas.writer_fence`): the loader appends a claim
record to `orders.events[p]` and folds up to and past it, and the partition's states carry the
claim's offset as the epoch every event the writer appends is stamped with. Records a deposed
writer appended after a later claim are dropped by the fold, as by every other reader.

Bounded recovery: with a snapshot store (`streams.snapshots`), the fold starts from the latest
snapshot of the partition and reads only the events after it. Neither the snapshot's orders in
flight nor the records after it are decoded before the partition is ready: the tail's records
are set aside by order (their key, past the fence), and each order is folded on its first
touch (a command, a keyless record), the rest behind the takeover, a slice at a time, each
announced to `on_loaded` as it is restored (so timers, trigger book and parent links follow).
The chain checkpoints are seeded then, at a moment the states are durable. A snapshot that
cannot be read, or that does not fit the store (`SnapshotMismatch`), is logged and the whole
partition is folded instead. Either way the records are read and folded in chunks, yielding to
the event loop between them (`streams.partition_fold`).

A record that cannot be decoded or folded is quarantined, never fatal to the partition: it is
logged with its topic, partition and offset and counted (`quarantined_records`), and only the
order it belongs to (its key, or the event's order id) is set aside with the reason; the rest of
the partition folds and flows. A seq gap in an order's history quarantines the order too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from domain.orders.state import OrderState, is_terminal
from schemas.snapshots import SnapshotRecord, SnapshotUnreadable
from streams.event_store import OutOfRange, StoredRecord
from streams.partition_fold import (
    Decode,
    Folded,
    PartitionFold,
    PartitionStates,
    SnapshotMismatch,
    fold_partition,
)
from streams.ports import Delivery

__all__ = ["Folded", "OrderStates", "PartitionStates", "fold_partition"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# A folded partition's orders in flight, and the children that ended in the fold (their
# final report to the parent may be what a crash kept from being sent).
Loaded = Callable[[int, list[OrderState]], None]
Sink = Callable[[list[StoredRecord]], Awaitable[None]]
Claim = Callable[[int], Awaitable[int]]  # append a claim to orders.events[p]; its offset
Dropped = Callable[[set[str]], None]  # orders whose states were dropped (timers, trigger book)
# Told each fold: the partition, its states and the offset of the last record folded (the
# chain checkpoints start from the fold's heads, streams.checkpoints).
OnFolded = Callable[[int, PartitionStates, int], None]

# How long a kept partition's own appends may take to settle before the check gives up and
# folds the partition again (its outcome unknown, the states may have run ahead of the store).
SETTLE_TIMEOUT_S = 5.0
FOLD_SLICE = 1000  # records folded between two yields to the event loop
RESTORE_SLICE = 50  # orders restored between two yields (~15 ms)
SEED_POLL_S = 0.05  # how often a restored partition looks for a durable moment


class EventStore(Protocol):
    """What the states are folded from: `orders.events` (`streams.event_store`)."""

    topic: str

    async def read(self, partition: int, start: int | None, sink: Sink) -> int:
        """Hand every record from `start` (None: the beginning) to the end at call time to
        `sink`, in chunks; returns that end. OutOfRange if `start` is not in the partition."""
        ...

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]: ...


class SnapshotSource(Protocol):
    """The latest snapshot of a partition (`streams.snapshots`)."""

    async def latest(self, partition: int) -> SnapshotRecord | None: ...

    def restore(self, snapshot: SnapshotRecord, decode: Decode) -> PartitionStates: ...


class PartitionRevoked(Exception):
    """A record's partition left this worker while the record waited for its states: the
    record is not this worker's to decide (the new owner consumes it again)."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} left this worker while its states loaded")
        self.partition = partition


class OrderStates:
    def __init__(self, reader: EventStore, decode: Decode, on_loaded: Loaded,
                 claim: Claim, on_dropped: Dropped = lambda orders: None, *,
                 snapshots: SnapshotSource | None = None,
                 settle_timeout_s: float = SETTLE_TIMEOUT_S,
                 on_folded: OnFolded | None = None) -> None:
        self._on_folded = on_folded
        self._reader = reader
        self._snapshots = snapshots
        self._claim = claim
        self._decode = decode
        self._on_loaded = on_loaded
        self._on_dropped = on_dropped
        self._settle_timeout_s = settle_timeout_s
        self._states: dict[int, PartitionStates] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._restoring: dict[int, asyncio.Task[None]] = {}  # a snapshot's orders, behind
        self._assigned_by_group = False  # once a rebalance said what is ours, nothing else is
        self.quarantined_records = 0

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            if partition not in self._loading:
                self._loading[partition] = asyncio.create_task(self._load(partition))

    def rebalance(self, assigned: Collection[int]) -> set[str]:
        """The partitions of orders.events this worker owns are now exactly `assigned`: forget
        those that left (their orders go to `on_dropped`, and are returned), check those
        kept, fold those new to it."""
        self._assigned_by_group = True
        held = set(self._states) | set(self._loading)
        dropped = self.revoke(held - set(assigned))
        if dropped:
            self._on_dropped(dropped)
        kept = {p: self._states.pop(p) for p in sorted(held & set(assigned))
                if p in self._states}
        if kept:
            ends = asyncio.ensure_future(self._ends_after(kept))
            for partition, states in kept.items():
                self._loading[partition] = asyncio.create_task(
                    self._resume(partition, states, ends))
        self.assign(assigned)
        return dropped

    def revoke(self, partitions: Iterable[int]) -> set[str]:
        """Forget the partitions; returns the ids of the orders forgotten."""
        dropped: set[str] = set()
        for partition in partitions:
            for tasks in (self._loading, self._restoring):
                task = tasks.pop(partition, None)
                if task is not None:
                    task.cancel()
            dropped.update(self._states.pop(partition, PartitionStates()).order_ids())
        return dropped

    def reload(self, partition: int, after: Sequence[Delivery]) -> set[str]:
        """Drop the partition's states (they ran ahead of the store) and fold it again once
        `after` (outputs still on their way) have settled, so the fold sees all that lands.

        The writer still owns the partition: it keeps its epoch and does not claim again (a
        claim is a write, and writes are what the broker is refusing right now; a successor's
        claim, if any, still fences this writer's events by the older epoch)."""
        states = self._states.get(partition)
        epoch = states.epoch if states is not None else None
        dropped = self.revoke([partition])
        self._loading[partition] = asyncio.create_task(self._load(partition, after, epoch))
        return dropped

    async def ready(self, partition: int) -> PartitionStates:
        """The partition's states, loading them first if this is the first touch (before any
        rebalance: tools and tests; after one, only an assigned partition is ours).

        Raises PartitionRevoked if the partition left this worker while its fold ran: the
        fold is cancelled then, and awaiting a cancelled task raises CancelledError in the
        awaiter — in the writer's Faust agent, which Faust takes for the agent's own death."""
        if partition not in self._states:
            if self._assigned_by_group and partition not in self._loading:
                raise PartitionRevoked(partition)  # a late record of a partition that left
            self.assign([partition])
            loading = self._loading[partition]
            try:
                await asyncio.shield(loading)
            except asyncio.CancelledError:
                if not loading.cancelled():
                    raise  # this waiter itself was cancelled (the worker is stopping)
                raise PartitionRevoked(partition) from None
        states = self._states.get(partition)
        if states is None:
            raise PartitionRevoked(partition)
        return states

    def held(self) -> set[int]:
        """The partitions whose states this worker holds or is loading."""
        return set(self._states) | set(self._loading)

    async def settled(self) -> None:
        """Until every partition being loaded now is loaded and its snapshot's orders are
        restored (or it was revoked meanwhile)."""
        pending = [task for task in self._loading.values() if not task.done()]
        if pending:
            await asyncio.wait(pending)
        restoring = [task for task in self._restoring.values() if not task.done()]
        if restoring:
            await asyncio.wait(restoring)

    def in_flight(self) -> int:
        return sum(1 for by_id in self._states.values() for s in by_id.orders.values()
                   if s.status is not None and not is_terminal(s)) + sum(
            len(by_id.unrestored) for by_id in self._states.values())

    async def _ends_after(self, kept: dict[int, PartitionStates]) -> dict[int, int]:
        """The store's end of each kept partition, once the writer's own appends settled."""
        pending = {d for states in kept.values() for d in states.pending}
        if pending:
            await asyncio.wait(pending, timeout=self._settle_timeout_s)
        return await self._reader.end_offsets(list(kept))

    async def _resume(self, partition: int, held: PartitionStates,
                      ends: asyncio.Future[dict[int, int]]) -> None:
        """Keep the states of a partition this worker kept, unless they are stale."""
        try:
            end: int | None = (await asyncio.shield(ends)).get(partition)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("partition %d: could not check the event store's end (%r)",
                        partition, exc)
            end = None
        # The end alone is not enough: a writer's own late append (a zombie's, fenced) can be
        # the store's end with another writer's claim and events below it. `durable`: every
        # record since the fold is this writer's own.
        if end is not None and held.durable() and end == held.end:
            self._states[partition] = held
            log.info("partition %d: kept across the rebalance (nothing appended since; "
                     "end %d, epoch %s)", partition, end, held.epoch)
            return
        log.info("partition %d: its event store moved on while it was revoked (end %s, this "
                 "writer's %s, %d unsettled, failed %s, %d own records since its fold at %s): "
                 "claiming and folding it again", partition, end, held.end, len(held.pending),
                 held.failed, held.own, held.folded_end)
        restoring = self._restoring.pop(partition, None)
        if restoring is not None:
            restoring.cancel()  # of the stale states
        self._on_dropped(held.order_ids() | set(held.quarantined))
        await self._load(partition)

    async def _load(self, partition: int, after: Sequence[Delivery] = (),
                    epoch: int | None = None) -> None:
        if after:
            await asyncio.wait(after)
        # Claim first, then read to the end: the end is past the claim, so the fold holds
        # everything a deposed writer appended before it, and nothing after it counts.
        started = time.monotonic()
        # The snapshot is looked up while the claim is on its way: neither needs the other.
        looked_up: list[asyncio.Future[PartitionStates | None]] = [
            asyncio.ensure_future(self._restored(partition))]
        try:
            if epoch is None:
                epoch = await self._retrying(partition, "claiming",
                                             lambda: self._claim(partition))
            claim_ms = (time.monotonic() - started) * 1000
            folded, how = await self._retrying(partition, "reading",
                                               lambda: self._fold(partition, looked_up))
        finally:
            for lookup in looked_up:
                lookup.cancel()
        for problem in folded.problems:
            log.error("quarantined %s", problem)
        self.quarantined_records += len(folded.problems)
        states = folded.states
        states.epoch = epoch
        self._states[partition] = states
        log.info("partition %d: folded %d events into %d orders in flight (%d of them to "
                 "restore behind), %d ended (%d quarantined), %s, in %.0f ms; claimed at "
                 "epoch %d in %.1f ms, %d records of deposed writers dropped", partition,
                 states.events, len(states.order_ids()),
                 len(states.unrestored) + len(states.tail),
                 len(states.terminal), len(states.quarantined), how,
                 (time.monotonic() - started) * 1000, epoch, claim_ms, states.stale)
        self._on_loaded(partition, [*states.orders.values(), *folded.ended_children])
        states.restored.clear()
        if states.lazy():
            self._restoring[partition] = asyncio.create_task(self._restore(partition, states))
        elif self._on_folded is not None:
            self._on_folded(partition, states, (states.end or 0) - 1)

    async def _restore(self, partition: int, states: PartitionStates) -> None:
        """Fold the orders nothing touched yet (the snapshot's, the tail's), a slice at a
        time, and announce every order restored (by this or by a first touch) to
        `on_loaded` as it stands now, with the children the tail ended: its timers, the
        trigger book and the parent links then follow, as after a fold. Then seed the chain
        checkpoints (`on_folded`), once the states are durable: their heads are the fold's
        and the writer's confirmed appends, exactly the partition up to its end."""
        loading = [task for task in self._loading.values() if not task.done()]
        if loading:  # the partitions still being taken come first: one event loop for all
            await asyncio.wait(loading)
        started = time.monotonic()
        count = len(states.unrestored) + len(states.tail)
        while states.lazy() or states.restored or states.children:
            await asyncio.sleep(0)  # the takeover's waiting commands first, then each slice
            quarantined = len(states.quarantined)
            states.restore_some(RESTORE_SLICE)
            if len(states.quarantined) > quarantined:
                for order_id in list(states.quarantined)[quarantined:]:
                    log.error("quarantined %s[%d]: order %s: %s", self._reader.topic,
                              partition, order_id, states.quarantined[order_id])
                self.quarantined_records += len(states.quarantined) - quarantined
            restored = [states.orders[o] for o in states.restored if o in states.orders]
            restored += states.children
            states.restored.clear()
            states.children.clear()
            if restored:
                self._on_loaded(partition, restored)
        log.info("partition %d: restored its %d orders of the snapshot and the tail behind "
                 "the takeover in %.0f ms", partition, count,
                 (time.monotonic() - started) * 1000)
        if self._on_folded is not None:
            while not states.durable() or states.end is None:
                await asyncio.sleep(SEED_POLL_S)  # appends on their way: their heads moved
            self._on_folded(partition, states, states.end - 1)
        self._restoring.pop(partition, None)

    def loaded(self) -> dict[int, PartitionStates]:
        """The partitions whose states are loaded (the snapshot writer's view)."""
        return dict(self._states)

    async def _fold(self, partition: int, looked_up: list[asyncio.Future[PartitionStates | None]]
                    ) -> tuple[Folded, str]:
        """The partition's states: from its latest snapshot and the events after it, or
        (none, or one that does not fit) from all its events. `looked_up`: the snapshot
        lookup already started (a retry looks it up again)."""
        restored = await (looked_up.pop() if looked_up else self._restored(partition))
        if restored is not None:
            try:
                since = restored.snapshot_offset
                folded = await self._fold_from(partition, restored, strict=True)
                return folded, (f"from the snapshot at offset {since} and the "
                                f"{(folded.states.end or 0) - (since or 0)} records after it")
            except (SnapshotMismatch, OutOfRange) as exc:
                log.warning("partition %d: the snapshot does not fit the event store (%s); "
                            "folding the whole partition", partition, exc)
        return (await self._fold_from(partition, PartitionStates(), strict=False),
                "from offset 0")

    async def _restored(self, partition: int) -> PartitionStates | None:
        if self._snapshots is None:
            return None
        try:
            snapshot = await self._snapshots.latest(partition)
            if snapshot is None:
                return None
            return self._snapshots.restore(snapshot, self._decode)
        except (SnapshotUnreadable, SnapshotMismatch) as exc:
            log.warning("partition %d: its latest snapshot cannot be used (%s); folding the "
                        "whole partition", partition, exc)
            return None

    async def _fold_from(self, partition: int, states: PartitionStates, *,
                         strict: bool) -> Folded:
        """Fold the records after `states.snapshot_offset` (all, if None) on top of `states`,
        a slice at a time, yielding to the event loop in between."""
        fold = PartitionFold(f"{self._reader.topic}[{partition}]", self._decode, states,
                             strict=strict, lazy=strict)  # after a snapshot: orders on touch

        async def sink(records: list[StoredRecord]) -> None:
            for at in range(0, len(records), FOLD_SLICE):
                fold.feed(records[at:at + FOLD_SLICE])
                await asyncio.sleep(0)

        end = await self._reader.read(partition, states.snapshot_offset, sink)
        states.end = states.folded_end = end
        return fold.folded()

    async def _retrying(self, partition: int, what: str,
                        attempt: Callable[[], Awaitable[T]]) -> T:
        """Without its claim and history a partition cannot decide anything: keep trying,
        loudly."""
        delay = 0.5
        while True:
            try:
                return await attempt()
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("partition %d: %s the event store failed (%r); retrying",
                            partition, what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
