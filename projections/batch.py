"""One batch of `orders.events` records, folded into the rows it changes.

Consumes the records of one `getmany` (decoded with the `Codec`) and `Snapshots` of the
orders they touch (the seq each has in the read model, and the state of those the batch
continues); produces the `order_events` rows to append, one `orders` row per touched order
(the state after the batch, folded with the pure `evolve`), the records that cannot be
applied, and the next offset per partition. No I/O: the store loads the snapshots and
writes the rows, in one transaction.

Only what the writer fence counts is decoded (`schemas.writer_fence`): claim records and the
events a deposed writer appended after its successor's claim are skipped, and each
partition's fence epoch goes into the batch, to be stored with its next offset.

Exactly-once lives here and in the store: an event whose seq the order has already reached
is a duplicate (a redelivery, or an event re-decided after a crash) and changes nothing.

An event row's status is the one its writer put in the envelope. The fold is still needed for
the `orders` row (and checks the history); a status that disagrees with it is a writer bug,
kept as a reject like any other. Only a v1/v2 record whose event alone does not tell its
status (the envelope's is null) shows the fold's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from domain.orders.errors import OrderDomainError
from domain.orders.events import Event, RouteSelected
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state
from domain.orders.status import OrderStatus
from readmodel.rows import EventRow, OrderRow, event_row, order_row
from schemas.codec import Codec, CodecError
from schemas.writer_fence import Fence, Verdict

RejectRow = tuple[str, int, int, str | None, int | None, str, bytes | None]


class MissingState(LookupError):
    """The store did not load the state of an order the batch continues (a bug)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """One record: its coordinates and its event, or why it could not be decoded."""

    partition: int
    offset: int
    event: Event | None
    value: bytes | None
    error: str | None = None
    status: OrderStatus | None = None  # the writer's, from the envelope


@dataclass(slots=True)
class DecodedBatch:
    topic: str
    items: list[Decoded] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    epochs: dict[int, int] = field(default_factory=dict)  # partition -> fence epoch after it
    stale: int = 0  # records of deposed writers skipped

    @property
    def max_seqs(self) -> dict[str, int]:
        """The highest seq of each order in the batch."""
        highest: dict[str, int] = {}
        for item in self.items:
            if item.event is not None:
                order_id, seq = item.event.order_id, item.event.seq
                highest[order_id] = max(seq, highest.get(order_id, 0))
        return highest

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class BatchRows:
    """What one batch writes: appended events, replaced orders, rejects, next offsets."""

    events: list[EventRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    epochs: dict[int, int] = field(default_factory=dict)
    duplicates: int = 0


def decode_batch(
    codec: Codec, topic: str, records: Mapping[Any, Iterable[ConsumerRecord[Any, Any]]],
    fences: dict[int, Fence] | None = None,
) -> DecodedBatch:
    """Decode every record of a `getmany` result the writer fence counts, partition by
    partition, in offset order. `fences` (per partition, updated in place) carry on from the
    previous batch; a partition without one starts from the beginning of the log."""
    batch = DecodedBatch(topic)
    fences = {} if fences is None else fences
    for tp, partition_records in records.items():
        fence = fences.setdefault(tp.partition, Fence())
        last = -1
        for record in partition_records:
            last = record.offset
            verdict = fence.judge(record.offset, record.headers)
            if verdict is Verdict.EVENT:
                batch.items.append(_decode(codec, record))
            else:
                batch.stale += verdict is Verdict.STALE
        if last >= 0:
            batch.next_offsets[tp.partition] = last + 1
            batch.epochs[tp.partition] = fence.epoch
    return batch


def _decode(codec: Codec, record: ConsumerRecord[Any, Any]) -> Decoded:
    value = record.value
    if value is None:
        return Decoded(record.partition, record.offset, None, None, "record without a value")
    try:
        envelope = codec.decode_envelope(value)
    except CodecError as error:
        return Decoded(record.partition, record.offset, None, value, f"undecodable: {error}")
    return Decoded(record.partition, record.offset, envelope.event, value,
                   status=envelope.status)


@dataclass(slots=True)
class Snapshots:
    """What a batch folds onto: the seq each touched order has in the read model, the state
    of each order that has events beyond it, and each state's `orders.routing` JSON when
    known (kept as text beside the state: re-serialising a decision costs more than folding
    it)."""

    stored: dict[str, int] = field(default_factory=dict)
    states: dict[str, OrderState] = field(default_factory=dict)
    routings: dict[str, str] = field(default_factory=dict)


def fold_batch(codec: Codec, batch: DecodedBatch, snapshots: Snapshots) -> BatchRows:
    """Fold `batch` onto `snapshots` (updated in place) and return the rows to write."""
    rows = BatchRows(next_offsets=dict(batch.next_offsets), epochs=dict(batch.epochs))
    touched: dict[str, None] = {}  # insertion-ordered set
    for item in batch.items:
        if item.event is None:
            rows.rejects.append(_reject(batch.topic, item, None, item.error or "no event"))
        elif _apply(codec, batch.topic, item, item.event, snapshots, rows):
            touched[item.event.order_id] = None
    rows.orders = [order_row(snapshots.states[order_id], snapshots.routings.get(order_id))
                   for order_id in touched]
    return rows


def _apply(codec: Codec, topic: str, item: Decoded, event: Event, snapshots: Snapshots,
           rows: BatchRows) -> bool:
    """Fold one event; True if it changed its order (not a duplicate, not rejected)."""
    order_id = event.order_id
    state = snapshots.states.get(order_id)
    applied = state.seq if state is not None else snapshots.stored.get(order_id, 0)
    if event.seq <= applied:
        rows.duplicates += 1  # already applied: the seq guard makes a replay a no-op
        return False
    if state is None and applied:
        raise MissingState(f"order {order_id} is at seq {applied}; its state was not loaded")
    try:
        state = evolve(state or initial_state(order_id), event)
    except OrderDomainError as error:
        # A writer bug (a gap, an event after a terminal one): kept for a human, and the
        # order's later events are refused too until its history makes sense.
        rows.rejects.append(_reject(topic, item, event, f"{type(error).__name__}: {error}"))
        return False
    assert state.status is not None  # evolve never leaves an accepted order without one
    if item.status is not None and item.status is not state.status:
        why = f"the envelope says {item.status.value}, the history {state.status.value}"
        rows.rejects.append(_reject(topic, item, event, f"StatusMismatch: {why}"))
        return False
    snapshots.states[order_id] = state
    payload = codec.event_to_json(event)
    if isinstance(event, RouteSelected):
        snapshots.routings[order_id] = orjson.dumps(payload["decision"]).decode()
    status = item.status or state.status  # the fold's only for a legacy record's null
    rows.events.append(event_row(event, status, orjson.dumps(payload).decode(), topic,
                                 item.partition, item.offset))
    return True


def _reject(topic: str, item: Decoded, event: Event | None, error: str) -> RejectRow:
    order_id = event.order_id if event is not None else None
    seq = event.seq if event is not None else None
    return (topic, item.partition, item.offset, order_id, seq, error, item.value)
