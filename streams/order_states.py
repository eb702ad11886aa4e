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
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state, is_terminal
from schemas.writer_fence import Fence, Verdict
from streams.event_store import StoredRecord
from streams.ports import Delivery, failure_of

log = logging.getLogger(__name__)
T = TypeVar("T")

Loaded = Callable[[int, list[OrderState]], None]
Decode = Callable[[bytes], Event]
Claim = Callable[[int], Awaitable[int]]  # append a claim to orders.events[p]; its offset
Dropped = Callable[[set[str]], None]  # orders whose states were dropped (timers, trigger book)

# How long a kept partition's own appends may take to settle before the check gives up and
# folds the partition again (its outcome unknown, the states may have run ahead of the store).
SETTLE_TIMEOUT_S = 5.0


class EventStore(Protocol):
    """What the states are folded from: `orders.events` (`streams.event_store`)."""

    topic: str

    async def read_partition(self, partition: int) -> list[StoredRecord]: ...

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]: ...


@dataclass(slots=True)
class PartitionStates:
    """The folded orders of one partition, and the orders whose history could not be folded."""

    orders: dict[str, OrderState] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)  # order id -> why
    epoch: int | None = None  # the writer's claim offset on the partition (None: no claim)
    stale: int = 0  # records of deposed writers the fold dropped
    events: int = 0  # records the fold read as events (not claims, not stale)
    # The next offset of the partition as this writer knows it: past what it folded and every
    # event of its own the broker confirmed (None: unknown). If the store's end is further,
    # someone else appended: the states are stale.
    end: int | None = None
    pending: set[Delivery] = field(default_factory=set)  # own appends not yet confirmed
    failed: bool = False  # one of them was refused: the states ran ahead of the store

    def appending(self, deliveries: Iterable[Delivery]) -> None:
        """Follow the writer's own appends to the partition (their offsets move `end`)."""
        for delivery in deliveries:
            self.pending.add(delivery)
            delivery.add_done_callback(self._appended)

    def _appended(self, delivery: Delivery) -> None:
        self.pending.discard(delivery)
        if failure_of(delivery) is not None:
            self.failed = True
            return
        offset = getattr(delivery.result(), "offset", None)
        if not isinstance(offset, int) or self.end is None:
            self.end = None  # an answer without an offset: the end is unknown from now on
        else:
            self.end = max(self.end, offset + 1)


@dataclass(frozen=True, slots=True)
class Folded:
    states: PartitionStates
    problems: tuple[str, ...]  # one line per quarantined record


def fold_partition(where: str, records: Sequence[StoredRecord], decode: Decode) -> Folded:
    """Fold `records` (of `where`, e.g. "orders.events[7]") into states, quarantining what
    cannot be decoded or folded: that record, and at most the one order it belongs to."""
    states = PartitionStates()
    problems: list[str] = []

    def quarantine(order_id: str | None, offset: int, why: str) -> None:
        problem = f"{where}@{offset}: {why}"
        problems.append(problem)
        if order_id is not None and order_id not in states.quarantined:
            states.orders.pop(order_id, None)
            states.quarantined[order_id] = problem

    fence = Fence()
    for record in records:
        verdict = fence.judge(record.offset, record.headers)
        if verdict is not Verdict.EVENT:
            states.stale += verdict is Verdict.STALE
            continue
        states.events += 1
        owner = _order_of(record.key)
        try:
            if record.value is None:
                raise ValueError("a record without a value (tombstone) is not an event")
            event = decode(record.value)
        except Exception as exc:
            quarantine(owner, record.offset, f"unreadable event ({type(exc).__name__}: {exc})")
            continue
        if event.order_id in states.quarantined:
            continue
        current = states.orders.get(event.order_id) or initial_state(event.order_id)
        if event.seq <= current.seq:
            continue  # a re-decided duplicate of an event already folded
        if event.seq != current.seq + 1:
            quarantine(event.order_id, record.offset, f"seq {event.seq} follows {current.seq}")
            continue
        try:
            states.orders[event.order_id] = evolve(current, event)
        except Exception as exc:
            quarantine(event.order_id, record.offset,
                       f"cannot fold seq {event.seq} ({type(exc).__name__}: {exc})")
    return Folded(states, tuple(problems))


def _order_of(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


class OrderStates:
    def __init__(self, reader: EventStore, decode: Decode, on_loaded: Loaded,
                 claim: Claim, on_dropped: Dropped = lambda orders: None, *,
                 settle_timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        self._reader = reader
        self._claim = claim
        self._decode = decode
        self._on_loaded = on_loaded
        self._on_dropped = on_dropped
        self._settle_timeout_s = settle_timeout_s
        self._states: dict[int, PartitionStates] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}
        self.quarantined_records = 0

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            if partition not in self._loading:
                self._loading[partition] = asyncio.create_task(self._load(partition))

    def rebalance(self, assigned: Collection[int]) -> set[str]:
        """The partitions of orders.events this worker owns are now exactly `assigned`: forget
        those that left (their orders go to `on_dropped`, and are returned), check those
        kept, fold those new to it."""
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
            task = self._loading.pop(partition, None)
            if task is not None:
                task.cancel()
            dropped.update(self._states.pop(partition, PartitionStates()).orders)
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
        """The partition's states, loading them first if this is the first touch."""
        if partition not in self._states:
            self.assign([partition])
            await asyncio.shield(self._loading[partition])
        return self._states[partition]

    def in_flight(self) -> int:
        return sum(1 for by_id in self._states.values() for s in by_id.orders.values()
                   if s.status is not None and not is_terminal(s))

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
        if end is not None and not held.pending and not held.failed and end == held.end:
            self._states[partition] = held
            log.info("partition %d: kept across the rebalance (nothing appended since; "
                     "end %d, epoch %s)", partition, end, held.epoch)
            return
        log.info("partition %d: its event store moved on while it was revoked (end %s, this "
                 "writer's %s, %d unsettled, failed %s): claiming and folding it again",
                 partition, end, held.end, len(held.pending), held.failed)
        self._on_dropped(set(held.orders) | set(held.quarantined))
        await self._load(partition)

    async def _load(self, partition: int, after: Sequence[Delivery] = (),
                    epoch: int | None = None) -> None:
        if after:
            await asyncio.wait(after)
        # Claim first, then read to the end: the end is past the claim, so the fold holds
        # everything a deposed writer appended before it, and nothing after it counts.
        started = time.monotonic()
        if epoch is None:
            epoch = await self._retrying(partition, "claiming", lambda: self._claim(partition))
        claim_ms = (time.monotonic() - started) * 1000
        records = await self._retrying(partition, "reading",
                                       lambda: self._reader.read_partition(partition))
        where = f"{self._reader.topic}[{partition}]"
        folded = fold_partition(where, records, self._decode)
        for problem in folded.problems:
            log.error("quarantined %s", problem)
        self.quarantined_records += len(folded.problems)
        states = folded.states
        states.epoch = epoch
        states.end = records[-1].offset + 1 if records else None
        self._states[partition] = states
        log.info("partition %d: folded %d events into %d orders (%d quarantined); claimed at "
                 "epoch %d in %.1f ms, %d records of deposed writers dropped", partition,
                 states.events, len(states.orders), len(states.quarantined), epoch, claim_ms,
                 states.stale)
        self._on_loaded(partition, list(states.orders.values()))

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
