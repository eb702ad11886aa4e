"""The folded states of one partition of the event store, and the fold that builds them.

Consumes the raw records of `orders.events[p]` in offset order, all at once (`fold_partition`)
or chunk by chunk (`PartitionFold.feed`, so a long partition never blocks the event loop and
never sits in memory whole), optionally on top of a snapshot's states; produces each order's
state. No I/O.

The writer keeps the full state (and the events, for the next snapshot) of orders not ended
only; an order that ends leaves only its id and chain head (`TerminalIds`), which is what a
late duplicate command needs to decide nothing and a chain checkpoint to pin it. Memory
therefore follows the orders in flight, not the history; and the events kept of an order
leave out what a later one supersedes (`domain.orders.elision`: of a waiting order's run of
`PriceObserved`, the last), so they follow its state, not how long it has waited.
`fold_partition` (tests, tools) keeps ended orders' states too.

A record that cannot be decoded or folded is quarantined, never fatal to the partition: only
the order it belongs to (its key, or the event's order id) is set aside with the reason. A seq
gap in an order's history quarantines the order too, except in the tail after a snapshot
(`strict`): there it means the snapshot does not match the store (`SnapshotMismatch`), and the
caller folds the whole partition instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from domain.orders.elision import evolve_over_elided, superseded
from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state, is_terminal
from domain.orders.status import OrderStatus
from schemas.codec import EventEnvelope
from schemas.writer_fence import NO_EPOCH, Fence, Verdict
from streams.event_store import StoredRecord
from streams.ports import Delivery, failure_of
from streams.terminal_ids import TerminalIds

# The event (no chain) or its envelope (`Codec.decode_envelope`: with its hash, which the
# fold keeps as the order's head).
Decode = Callable[[bytes], Event | EventEnvelope]
History = list[tuple[Event, OrderStatus]]  # an order's events, each with the status after it


class SnapshotMismatch(ValueError):
    """The events after a snapshot do not continue the histories it holds."""


@dataclass(slots=True)
class PartitionStates:
    """The folded orders of one partition, and the orders whose history could not be folded."""

    orders: dict[str, OrderState] = field(default_factory=dict)  # not ended (unless keep_terminal)
    quarantined: dict[str, str] = field(default_factory=dict)  # order id -> why
    terminal: TerminalIds = field(default_factory=TerminalIds)  # ended orders
    histories: dict[str, History] = field(default_factory=dict)  # of `orders`, for snapshots
    keep_terminal: bool = False
    epoch: int | None = None  # the writer's claim offset on the partition (None: no claim)
    fence_epoch: int = NO_EPOCH  # the fence's epoch where the fold stopped
    stale: int = 0  # records of deposed writers the fold dropped
    events: int = 0  # records the fold read as events (not claims, not stale)
    # The next offset of the partition as this writer knows it: past what it folded and every
    # event of its own the broker confirmed (None: unknown). If the store's end is further,
    # someone else appended: the states are stale.
    end: int | None = None
    folded_end: int | None = None  # where the fold that built these states stopped
    own: int = 0  # the writer's own appends confirmed since (each at an offset >= folded_end)
    pending: set[Delivery] = field(default_factory=set)  # own appends not yet confirmed
    failed: bool = False  # one of them was refused: the states ran ahead of the store
    snapshot_offset: int | None = None  # the latest snapshot known to cover [0, this)
    # What ended a child, until its final report to the parent is stored too: no snapshot
    # may cover a child's end before then (the fold after it would not report again).
    reporting: set[Delivery] = field(default_factory=set)
    # The hash chain (schemas.chain): order id -> the hash of its last event, which the
    # writer chains its next event to; absent while the last event has none (before v5).
    # Of orders not ended (unless keep_terminal): an ended order's head moves to `terminal`,
    # 48 bytes beside its id, where a chain checkpoint and a snapshot still find it
    # (`all_heads`), so memory follows the orders in flight, not the history.
    heads: dict[str, bytes] = field(default_factory=dict)
    # Orders in flight a snapshot holds that nothing touched since the partition was taken:
    # their events' values, folded on first touch (`state_of`) or by the loader in the
    # background (`restore_some`), with `decode`. A takeover waits for none of them.
    unrestored: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    decode: Decode | None = None
    # Likewise the records after the snapshot (the tail), by order (their key), past the
    # fence but not decoded, folded on first touch by `refold` (`PartitionFold(lazy=True)`).
    tail: dict[str, list[StoredRecord]] = field(default_factory=dict)
    refold: Callable[[str, list[StoredRecord]], None] | None = None
    restored: dict[str, None] = field(default_factory=dict)  # folded since the loader looked
    children: list[OrderState] = field(default_factory=list)  # ended in what `refold` read

    def ended(self, order_id: str) -> bool:
        return order_id in self.terminal

    def state_of(self, order_id: str, *, strict: bool = False) -> OrderState | None:
        """The state of the order if it is in flight here, folded from the snapshot and its
        tail records first if nothing touched it yet (None: new, ended or quarantined). Its
        snapshot events not folding is a SnapshotMismatch if `strict`; else the order is
        quarantined."""
        state = self.orders.get(order_id)
        if state is None and order_id in self.unrestored:
            state = self._restore(order_id, strict)
        records = self.tail.pop(order_id, None) if self.tail else None
        if records is not None:
            assert self.refold is not None, "a lazy tail comes with its fold"
            self.refold(order_id, records)
            state = self.orders.get(order_id)
            if state is not None:
                self.restored[order_id] = None
        return state

    def restore_some(self, count: int) -> None:
        """Fold `count` of the orders not restored yet (quarantining those that do not)."""
        for order_id in list(itertools.islice(itertools.chain(self.unrestored, self.tail),
                                              count)):
            self.state_of(order_id)

    def lazy(self) -> bool:
        """Are some orders still to be restored (from the snapshot or the tail)?"""
        return bool(self.unrestored or self.tail)

    def restore_all(self) -> None:
        """Fold every order not restored yet; SnapshotMismatch if one does not fold."""
        for order_id in list(self.unrestored):
            self._restore(order_id, strict=True)

    def order_ids(self) -> set[str]:
        """The orders in flight here, restored or not (and those the tail ends, until then)."""
        return set(self.orders) | set(self.unrestored) | set(self.tail)

    def _restore(self, order_id: str, strict: bool) -> OrderState | None:
        values = self.unrestored.pop(order_id)
        assert self.decode is not None, "unrestored orders come with their decode"
        try:
            state, history = fold_stored(order_id, values, self.decode)
        except SnapshotMismatch as exc:
            if strict:
                raise
            self.heads.pop(order_id, None)
            self.quarantined[order_id] = (f"its events in the snapshot at offset "
                                          f"{self.snapshot_offset} do not fold: {exc}")
            return None
        self.orders[order_id] = state
        self.histories[order_id] = history
        self.restored[order_id] = None
        return state

    def record(self, state: OrderState, events: Sequence[Event],
               statuses: Sequence[OrderStatus]) -> None:
        """The order's state after `events` (its own statuses after each): kept whole while
        the order is in flight, as its id and head alone once it ended. Told after `heads`
        moved past `events`."""
        if is_terminal(state) and not self.keep_terminal:
            self.orders.pop(state.order_id, None)
            self.histories.pop(state.order_id, None)
            self.terminal.add(state.order_id, self.heads.pop(state.order_id, None))
            return
        self.orders[state.order_id] = state
        history = self.histories.setdefault(state.order_id, [])
        for event, status in zip(events, statuses, strict=True):
            if history and superseded(history[-1][0], event):
                history[-1] = (event, status)  # a run of PriceObserved keeps its last
            else:
                history.append((event, status))

    def all_heads(self) -> dict[str, bytes]:
        """Every order's head, ended or not (what a chain checkpoint's root covers)."""
        return {**dict(self.terminal.with_heads()), **self.heads}

    def durable(self) -> bool:
        """Are these states exactly the fold of `[0, end)`: every own append confirmed, and
        every record since the fold the writer's own (no other writer's claim or event)?"""
        return (not self.pending and not self.failed and self.end is not None
                and self.folded_end is not None and self.end - self.folded_end == self.own)

    def report_pending(self, settled: Delivery) -> None:
        """`settled`: all a child's last decision caused, its final report included."""
        self.reporting.add(settled)
        settled.add_done_callback(self.reporting.discard)

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
            self.own += 1


@dataclass(frozen=True, slots=True)
class Folded:
    states: PartitionStates
    problems: tuple[str, ...]  # one line per quarantined record
    # Children (of a twap/dca) whose last event the fold read: their final report to the
    # parent may be what a crash kept from being sent (`parent_links.commands_on_load`).
    ended_children: tuple[OrderState, ...] = ()


class PartitionFold:
    """Folds the records of `where` (e.g. "orders.events[7]") fed to it in offset order."""

    def __init__(self, where: str, decode: Decode, states: PartitionStates | None = None,
                 *, strict: bool = False, lazy: bool = False) -> None:
        """`lazy`: the records of an order are only set aside (`PartitionStates.tail`), past
        the fence, and folded on the order's first touch, non-strict (a gap quarantines)."""
        self.where = where
        self.states = states if states is not None else PartitionStates()
        self.problems: list[str] = []
        self.ended_children: list[OrderState] = []
        self._decode = decode
        self._fence = Fence(self.states.fence_epoch)
        self._strict = strict
        self._lazy = lazy
        if lazy:
            self.states.refold = self._refold

    def feed(self, records: Iterable[StoredRecord]) -> None:
        for record in records:
            self._fold(record)
        self.states.fence_epoch = self._fence.epoch

    def folded(self) -> Folded:
        return Folded(self.states, tuple(self.problems), tuple(self.ended_children))

    def _fold(self, record: StoredRecord) -> None:
        states = self.states
        verdict = self._fence.judge(record.offset, record.headers)
        if verdict is not Verdict.EVENT:
            states.stale += verdict is Verdict.STALE
            return
        states.events += 1
        order_id = _order_of(record.key) if self._lazy and record.value is not None else None
        if order_id is None:  # folded now: a tombstone or a keyless record, and every record
            self._fold_event(record)  # when not lazy
        elif order_id not in states.quarantined:  # (nothing counts for one quarantined)
            states.tail.setdefault(order_id, []).append(record)

    def _refold(self, order_id: str, records: list[StoredRecord]) -> None:
        """Fold the tail records of `order_id`, now (its first touch)."""
        children = len(self.ended_children)
        strict, self._strict = self._strict, False
        try:
            for record in records:
                self._fold_event(record, order_id)
        finally:
            self._strict = strict
        self.states.children.extend(self.ended_children[children:])

    def _fold_event(self, record: StoredRecord, key: str | None = None) -> None:
        """`key`: the order the record was set aside for (its record key)."""
        states = self.states
        try:
            if record.value is None:
                raise ValueError("a record without a value (tombstone) is not an event")
            decoded = self._decode(record.value)
        except Exception as exc:
            self._quarantine(_order_of(record.key), record.offset,
                             f"unreadable event ({type(exc).__name__}: {exc})")
            return
        event, head = event_and_head(decoded)
        if key is not None and event.order_id != key:  # set aside under another order
            self._quarantine(key, record.offset, f"the record keyed {key} holds an event of "
                             f"order {event.order_id}")
            return
        current = states.state_of(event.order_id, strict=self._strict)
        if event.order_id in states.quarantined:
            return  # (or its snapshot events did not fold just now)
        if current is None:  # new, or ended (the id set is only searched then: it costs more)
            if states.ended(event.order_id):
                return  # nothing counts after an order ended (a re-decided duplicate at most)
            current = initial_state(event.order_id)
        if event.seq <= current.seq:
            return  # a re-decided duplicate of an event already folded
        if event.seq != current.seq + 1:
            why = f"seq {event.seq} follows {current.seq}"
            if self._strict:
                raise SnapshotMismatch(f"{self.where}@{record.offset}: order "
                                       f"{event.order_id}: {why}")
            self._quarantine(event.order_id, record.offset, why)
            return
        try:
            state = evolve(current, event)
        except Exception as exc:
            self._quarantine(event.order_id, record.offset,
                             f"cannot fold seq {event.seq} ({type(exc).__name__}: {exc})")
            return
        assert state.status is not None  # evolve never leaves an accepted order without one
        advance(states.heads, event.order_id, head)
        states.record(state, (event,), (state.status,))
        if state.parent_id is not None and is_terminal(state):
            self.ended_children.append(state)

    def _quarantine(self, order_id: str | None, offset: int, why: str) -> None:
        problem = f"{self.where}@{offset}: {why}"
        self.problems.append(problem)
        if order_id is not None and order_id not in self.states.quarantined:
            self.states.orders.pop(order_id, None)
            self.states.unrestored.pop(order_id, None)
            self.states.tail.pop(order_id, None)
            self.states.histories.pop(order_id, None)
            self.states.heads.pop(order_id, None)
            self.states.quarantined[order_id] = problem


def fold_partition(where: str, records: Sequence[StoredRecord], decode: Decode) -> Folded:
    """Fold `records` (of `where`) into states, ended orders included, quarantining what
    cannot be decoded or folded: that record, and at most the one order it belongs to."""
    fold = PartitionFold(where, decode, PartitionStates(keep_terminal=True))
    fold.feed(records)
    return fold.folded()


def fold_stored(order_id: str, values: Iterable[bytes], decode: Decode
                ) -> tuple[OrderState, History]:
    """An order's state from the events a snapshot stored for it (seq 1..n, less what a
    later event superseded: `domain.orders.elision`), with its history. SnapshotMismatch if
    they do not fold."""
    state, history = initial_state(order_id), []
    for value in values:
        try:
            event, _ = event_and_head(decode(value))  # stored unchained: the head is apart
            if event.order_id != order_id or event.seq <= state.seq:
                raise ValueError(f"seq {event.seq} of {event.order_id} after {state.seq}")
            state = evolve_over_elided(state, event)  # a gap: superseded events left out
        except Exception as exc:
            raise SnapshotMismatch(f"order {order_id}: {type(exc).__name__}: {exc}") from exc
        assert state.status is not None
        history.append((event, state.status))
    return state, history


def event_and_head(decoded: Event | EventEnvelope) -> tuple[Event, bytes | None]:
    """The event a decode gave, and its hash if it came in its envelope."""
    if isinstance(decoded, EventEnvelope):
        return decoded.event, decoded.hash
    return decoded, None


def advance(heads: dict[str, bytes], order_id: str, head: bytes | None) -> None:
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
