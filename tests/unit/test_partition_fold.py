"""Folding a partition of the event store: what an unreadable record or a gap sets aside."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.events import Event
from domain.orders.state import initial_state
from schemas.codec import Codec
from streams.event_store import StoredRecord
from streams.order_agent import OrderQuarantined, OrderWriter, WriterConfig
from streams.order_states import PartitionStates, fold_partition
from streams.partition_fold import PartitionFold
from tests.orders_support import WriterStatuses
from tests.unit.stream_fakes import T0, FakeClock, FakeOutbox, FakeStates, execute_order

CODEC = Codec.load()
GARBAGE = bytes(range(64))


def accepted(order_id: str) -> tuple[Event, ...]:
    return decide(initial_state(order_id), execute_order(order_id), now=T0,
                  policy=ExecutionPolicy())


def stored(*items: Event | tuple[bytes | None, bytes | None]) -> list[StoredRecord]:
    records = []
    statuses = WriterStatuses()
    for offset, item in enumerate(items):
        if isinstance(item, tuple):
            records.append(StoredRecord(offset, *item))
        else:
            value = CODEC.encode_event(item, status=statuses.after(item))
            records.append(StoredRecord(offset, item.order_id.encode(), value))
    return records


def test_garbage_keyed_by_an_order_quarantines_that_order_and_the_rest_folds() -> None:
    a1, a2 = accepted("a")
    b1, b2 = accepted("b")
    records = stored(a1, b1, (b"a", GARBAGE), b2, a2, (None, GARBAGE))

    folded = fold_partition("orders.events[7]", records, CODEC.decode_event)

    assert set(folded.states.orders) == {"b"} and folded.states.orders["b"].seq == 2
    assert list(folded.states.quarantined) == ["a"]
    assert folded.states.quarantined["a"].startswith("orders.events[7]@2: unreadable event")
    assert [p.split(":")[0] for p in folded.problems] == ["orders.events[7]@2",
                                                          "orders.events[7]@5"]


def test_a_gap_in_an_order_s_seq_quarantines_it_and_a_duplicate_is_skipped() -> None:
    a1, a2 = accepted("a")
    b1, b2 = accepted("b")

    folded = fold_partition("orders.events[0]", stored(a1, a1, a2, b2, b1),
                            CODEC.decode_event)

    assert folded.states.orders["a"].seq == 2
    assert folded.states.quarantined == {"b": "orders.events[0]@3: seq 2 follows 0"}


async def test_a_command_to_a_quarantined_order_is_refused_with_the_reason_others_decide(
) -> None:
    states = FakeStates()
    states.partitions[7] = PartitionStates(quarantined={"a": "orders.events[7]@2: unreadable"})
    outbox = FakeOutbox()
    writer = OrderWriter(states, outbox, WriterConfig(ExecutionPolicy(), timedelta(seconds=15)),
                         FakeClock())

    with pytest.raises(OrderQuarantined, match=r"orders.events\[7\]@2"):
        await writer.handle(7, execute_order("a"))
    decided = await writer.handle(7, execute_order("b"))

    assert len(decided.events) == 2
    assert {e.order_id for e in outbox.of("events")} == {"b"}


def test_the_fold_lists_the_children_that_ended_in_it_for_their_final_report() -> None:
    from domain.orders.commands import CancelOrder
    from domain.orders.evolve import evolve

    child = initial_state("child")
    accepted_events = decide(child, execute_order("child", parent_id="parent"), now=T0,
                             policy=ExecutionPolicy())
    for event in accepted_events:
        child = evolve(child, event)
    cancelled = decide(child, CancelOrder(command_id="c", order_id="child", issued_at=T0),
                       now=T0, policy=ExecutionPolicy())
    plain = accepted("plain")
    records = stored(*accepted_events, *plain, *cancelled)
    fold = PartitionFold("orders.events[0]", CODEC.decode_event)
    fold.feed(records)

    (ended,) = fold.folded().ended_children
    assert ended.order_id == "child" and ended.parent_id == "parent" and ended.seq == 3
    assert "child" in fold.states.terminal and "plain" in fold.states.orders

    lazy = PartitionFold("orders.events[0]", CODEC.decode_event, lazy=True)
    lazy.feed(records)  # a tail: set aside by order, folded on first touch
    assert lazy.states.children == [] and lazy.states.state_of("child") is None
    assert lazy.states.children == [ended] and "child" in lazy.states.terminal
