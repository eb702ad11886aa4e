"""The order agent's in-memory state, one map per assigned partition, folded from the event store.

Consumes the raw records of `orders.events[p]` (`EventStoreReader`) and produces each order's
folded state. Loading starts as soon as a partition is assigned (so the watchdog re-arms timers
for stalled orders even if no command ever arrives for them) and the agent awaits it before
deciding anything for that partition. Revoked partitions are forgotten: their next owner folds
them anew.

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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka.errors import KafkaError

from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state, is_terminal
from schemas.codec import EventEnvelope
from schemas.writer_fence import Fence, Verdict
from streams.event_store import EventStoreReader, StoredRecord
from streams.ports import Delivery

log = logging.getLogger(__name__)
T = TypeVar("T")

Loaded = Callable[[int, list[OrderState]], None]
# The event (no chain) or its envelope (`Codec.decode_envelope`: with its hash, which the
# fold keeps as the order's head).
Decode = Callable[[bytes], Event | EventEnvelope]
Claim = Callable[[int], Awaitable[int]]  # append a claim to orders.events[p]; its offset
# Told each fold: the partition, its states and the offset of the last record folded (the
# chain checkpoints start from the fold's heads, streams.checkpoints).
OnFolded = Callable[[int, "PartitionStates", int], None]


@dataclass(slots=True)
class PartitionStates:
    """The folded orders of one partition, and the orders whose history could not be folded."""

    orders: dict[str, OrderState] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)  # order id -> why
    epoch: int | None = None  # the writer's claim offset on the partition (None: no claim)
    stale: int = 0  # records of deposed writers the fold dropped
    events: int = 0  # records the fold read as events (not claims, not stale)
    # The hash chain (schemas.chain): order id -> the hash of its last event, which the
    # writer chains its next event to; absent while the last event has none (before v5).
    heads: dict[str, bytes] = field(default_factory=dict)


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
            states.heads.pop(order_id, None)
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
            decoded = decode(record.value)
        except Exception as exc:
            quarantine(owner, record.offset, f"unreadable event ({type(exc).__name__}: {exc})")
            continue
        event, head = ((decoded.event, decoded.hash) if isinstance(decoded, EventEnvelope)
                       else (decoded, None))
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
            _advance(states.heads, event.order_id, head)
        except Exception as exc:
            quarantine(event.order_id, record.offset,
                       f"cannot fold seq {event.seq} ({type(exc).__name__}: {exc})")
    return Folded(states, tuple(problems))


def _advance(heads: dict[str, bytes], order_id: str, head: bytes | None) -> None:
    """The order's head is its last event's hash; an event without one (written before
    v5) leaves no head: the writer starts the order's chain afresh (schemas.chain)."""
    if head is None:
        heads.pop(order_id, None)
    else:
        heads[order_id] = head


def _order_of(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


class OrderStates:
    def __init__(self, reader: EventStoreReader, decode: Decode, on_loaded: Loaded,
                 claim: Claim, on_folded: OnFolded | None = None) -> None:
        self._on_folded = on_folded
        self._reader = reader
        self._claim = claim
        self._decode = decode
        self._on_loaded = on_loaded
        self._states: dict[int, PartitionStates] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}
        self.quarantined_records = 0

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            if partition not in self._loading:
                self._loading[partition] = asyncio.create_task(self._load(partition))

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
        self._states[partition] = states
        log.info("partition %d: folded %d events into %d orders (%d quarantined); claimed at "
                 "epoch %d in %.1f ms, %d records of deposed writers dropped", partition,
                 states.events, len(states.orders), len(states.quarantined), epoch, claim_ms,
                 states.stale)
        self._on_loaded(partition, list(states.orders.values()))
        if self._on_folded is not None:
            self._on_folded(partition, states, records[-1].offset if records else -1)

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
