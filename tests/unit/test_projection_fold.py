"""The projection's pure parts: the row snapshot the fold resumes from, the audit log's JSON
read back into events, a batch's fold with its seq guard, and the replay's seq audit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.order_histories import HistoryMaker, interleaved
from domain.orders import Event, OrderConfirmed, OrderStatus, fold
from domain.orders.errors import OrderDomainError
from domain.orders.evolve import recorded_statuses
from projections.audit import Coordinates, SeqAudit
from projections.batch import DecodedBatch, Decoded, Snapshots, fold_batch
from readmodel.event_json import EventReader
from readmodel.rows import order_row
from schemas.codec import Codec

CODEC = Codec.load()
HISTORIES = list(HistoryMaker(seed=11).orders(300))
AT = Coordinates("orders.events", 0, 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(HISTORIES) - 1), st.data())
def test_an_order_picked_up_from_its_audit_log_folds_on_to_the_same_row(
    index: int, data: st.DataObject
) -> None:
    """What the projector does for an order it does not hold in memory (after a restart)."""
    events = HISTORIES[index]
    split = data.draw(st.integers(min_value=1, max_value=len(events) - 1))
    audit_rows = [{"type": type(e).__name__, "payload": CODEC.event_to_json(e),
                   "event_id": e.event_id, "order_id": e.order_id, "seq": e.seq,
                   "occurred_at": e.occurred_at} for e in events[:split]]
    picked_up = fold(EventReader().history(audit_rows))
    assert order_row(fold(events[split:], picked_up)) == order_row(fold(events))


def test_every_event_type_reads_back_from_its_audit_log_json() -> None:
    reader = EventReader()
    seen = set()
    for event in (e for history in HISTORIES for e in history):
        back = reader.event(type(event).__name__, CODEC.event_to_json(event),
                            event_id=event.event_id, order_id=event.order_id, seq=event.seq,
                            occurred_at=event.occurred_at)
        assert back == dataclasses.replace(event, correlation_id="", causation_id="")
        seen.add(type(event).__name__)
    assert {"OrderAccepted", "RouteSelected", "OrderConfirmed", "OrderFailed",
            "OrderCancelled", "RetryScheduled", "CancelRejected", "OrderRedriven"} <= seen


def batch_of(events: list[Event], start_offset: int = 0,
             statuses: list[OrderStatus | None] | None = None) -> DecodedBatch:
    """The decoded records of `events`, each with the status its writer recorded (by default
    the fold's, or None, as in a v2 record, where `events` are not whole histories)."""
    batch = DecodedBatch("orders.events")
    recorded: list[OrderStatus | None]
    try:
        recorded = statuses if statuses is not None else list(recorded_statuses(events))
    except OrderDomainError:
        recorded = [None] * len(events)
    for offset, (event, status) in enumerate(zip(events, recorded, strict=True), start_offset):
        batch.items.append(Decoded(0, offset, event, None, status=status))
    batch.next_offsets[0] = start_offset + len(events)
    return batch


def test_an_event_row_shows_the_status_its_writer_recorded() -> None:
    events = interleaved(HISTORIES[:20])
    rows = fold_batch(CODEC, batch_of(events), Snapshots())
    assert [OrderStatus(row[4]) for row in rows.events] == recorded_statuses(events)


def test_a_status_that_contradicts_the_history_is_rejected_as_a_writer_bug() -> None:
    history = HISTORIES[3]
    statuses: list[OrderStatus | None] = list(recorded_statuses(history))
    statuses[1] = OrderStatus.CONFIRMED  # the writer says confirmed, its fold routing
    rows = fold_batch(CODEC, batch_of(history, statuses=statuses), Snapshots())
    assert "StatusMismatch" in rows.rejects[0][5] and rows.rejects[0][4] == 2
    assert [row[2] for row in rows.events] == [1]


def test_a_legacy_record_without_a_status_shows_the_folds() -> None:
    history = HISTORIES[5]
    rows = fold_batch(CODEC, batch_of(history, statuses=[None] * len(history)), Snapshots())
    assert [OrderStatus(row[4]) for row in rows.events] == recorded_statuses(history)


def test_a_batch_appends_every_event_and_writes_each_touched_order_once() -> None:
    events = interleaved(HISTORIES[:20])
    rows = fold_batch(CODEC, batch_of(events), Snapshots())
    assert len(rows.events) == len(events)
    assert sorted(r[0] for r in rows.orders) == sorted({e.order_id for e in events})
    assert rows.next_offsets == {0: len(events)}
    by_id = {row[0]: row for row in rows.orders}
    for history in HISTORIES[:20]:
        assert by_id[history[0].order_id] == order_row(fold(history))


def test_an_event_at_or_below_the_stored_seq_is_a_duplicate_without_loading_a_state() -> None:
    history = HISTORIES[7]
    snapshots = Snapshots(stored={history[0].order_id: len(history)})
    rows = fold_batch(CODEC, batch_of(history[2:]), snapshots)
    assert (rows.events, rows.orders, rows.duplicates) == ([], [], len(history) - 2)


def test_events_already_applied_change_nothing() -> None:
    events = interleaved(HISTORIES[:10])
    snapshots = Snapshots()
    fold_batch(CODEC, batch_of(events), snapshots)
    again = fold_batch(CODEC, batch_of(events, len(events)), snapshots)
    assert (again.events, again.orders, again.rejects) == ([], [], [])
    assert again.duplicates == len(events)


def test_a_gap_is_rejected_with_the_orders_later_events_and_other_orders_go_on() -> None:
    broken, fine = HISTORIES[0], HISTORIES[1]
    events = [broken[0], *broken[2:], *fine]
    rows = fold_batch(CODEC, batch_of(events), Snapshots())
    assert [r[4] for r in rows.rejects] == [e.seq for e in broken[2:]]
    assert "SequenceGap" in rows.rejects[0][5]
    assert [r[0] for r in rows.orders] == [broken[0].order_id, fine[0].order_id]
    assert rows.orders[0][1] == 1  # the broken order stays at seq 1


def test_an_undecodable_record_is_rejected_not_skipped_silently() -> None:
    batch = DecodedBatch("orders.events", [Decoded(3, 7, None, b"\x00junk", "undecodable: x")],
                         {3: 8})
    rows = fold_batch(CODEC, batch, Snapshots())
    assert rows.rejects == [("orders.events", 3, 7, None, None, "undecodable: x", b"\x00junk")]
    assert rows.next_offsets == {3: 8}


def audit_of(events: list[Event], *, from_start: bool = True) -> SeqAudit:
    audit = SeqAudit(from_start=from_start)
    for offset, event in enumerate(events):
        audit.add(event, dataclasses.replace(AT, offset=offset))
    return audit


def kinds(audit: SeqAudit) -> list[str]:
    return [finding.kind for finding in audit.findings]


def test_a_complete_history_passes_the_audit() -> None:
    audit = audit_of(interleaved(HISTORIES[:30]))
    assert (audit.findings, audit.failed, audit.orders) == ([], False, 30)


@pytest.mark.parametrize(
    ("arrange", "expected", "failed"),
    [
        (lambda h: [h[0], *h[2:3]], ["gap"], True),
        (lambda h: h[1:2], ["gap"], True),  # a whole history must start at seq 1
        (lambda h: [*h[:3], h[1]], ["duplicate"], False),  # a redelivery is not a failure
        (lambda h: [h[0], h[2], h[1]], ["gap", "out_of_order"], True),
        (lambda h: [*h[:2], dataclasses.replace(h[1], event_id="other")], ["conflict"], True),
    ],
)
def test_the_audit_names_what_is_wrong(
    arrange: Callable[[list[Event]], list[Event]], expected: list[str], failed: bool
) -> None:
    audit = audit_of(arrange(HISTORIES[5]))
    assert kinds(audit) == expected
    assert audit.failed is failed


def test_an_event_after_the_terminal_one_fails_the_audit() -> None:
    history = next(h for h in HISTORIES if isinstance(h[-1], OrderConfirmed))
    extra = dataclasses.replace(history[-1], seq=history[-1].seq + 1, event_id="late")
    assert kinds(audit_of([*history, extra])) == ["after_terminal"]


def test_a_time_range_may_start_in_the_middle_of_a_history() -> None:
    assert audit_of(HISTORIES[5][2:], from_start=False).findings == []
