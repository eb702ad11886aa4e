"""The parent orders (twap, dca) of the pure core: schedule, decide, evolve, timers, links."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.orders.commands import (
    CancelOrder,
    ChildReport,
    Command,
    ExecuteOrder,
    SliceDue,
)
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.errors import InvalidCommand
from domain.orders.events import (
    ChildProgressed,
    Event,
    OrderAccepted,
    ParentAccepted,
    ParentCancelled,
    ParentCancelRequested,
    ParentCompleted,
    SliceReleased,
    SliceSkipped,
)
from domain.orders.evolve import evolve
from domain.orders.ids import child_id
from domain.orders.parent_links import commands_after, commands_on_load
from domain.orders.rules import order_errors
from domain.orders.schedule import MAX_SLICES, schedule, slice_amounts
from domain.orders.state import OrderState, initial_state
from domain.orders.status import OrderStatus, OrderType
from domain.orders.terms import DcaTerms, MarketTerms, TwapTerms
from domain.orders.timers import timers_of

S = OrderStatus
PARENT = "parent-1"
SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
POLICY = ExecutionPolicy()
COMMON: dict[str, Any] = dict(token_in=SOL, token_out=USDC, token_in_symbol="SOL",
                              token_out_symbol="USDC", token_in_decimals=9,
                              token_out_decimals=6, slippage_bps=50)


def twap(amount_in: int = 3_000_000_000, slices: int = 3, interval_s: int = 10,
         **extra: Any) -> TwapTerms:
    return TwapTerms(**COMMON, amount_in=amount_in, slices=slices, interval_s=interval_s,
                     **extra)


def dca(amount_in: int = 1_000, per_slice: int = 300, interval_s: int = 60,
        **extra: Any) -> DcaTerms:
    return DcaTerms(**COMMON, amount_in=amount_in, amount_per_slice=per_slice,
                    interval_s=interval_s, **extra)


def execute(terms: Any, order_id: str = PARENT, **extra: Any) -> ExecuteOrder:
    return ExecuteOrder(command_id=f"cmd-{order_id}", order_id=order_id, issued_at=T0,
                        terms=terms, owner="key-1", **extra)


class Parent:
    """A parent driven through decide/evolve, as the writer does."""

    def __init__(self, terms: Any, now: datetime = T0) -> None:
        self.state = initial_state(PARENT)
        self.events: list[Event] = []
        self.now = now
        self.send(execute(terms))

    def send(self, command: Command) -> tuple[Event, ...]:
        events = decide(self.state, command, now=self.now, policy=POLICY)
        for event in events:
            self.state = evolve(self.state, event)
        self.events.extend(events)
        return events

    def due(self, index: int, price: Decimal | None = None) -> tuple[Event, ...]:
        progress = self.state.parent
        assert progress is not None
        amount = progress.slices[index] if index < len(progress.slices) else 0
        return self.send(SliceDue(command_id=f"due-{index}", order_id=PARENT, issued_at=self.now,
                                  slice_index=index, token_in=SOL, token_out=USDC,
                                  amount_in=amount, observed_price=price))

    def report(self, index: int, seq: int, status: OrderStatus,
               amount_out: int | None = None) -> tuple[Event, ...]:
        child = child_id(PARENT, index)
        return self.send(ChildReport(command_id=f"rep-{index}-{seq}", order_id=PARENT,
                                     issued_at=self.now, child_id=child, child_seq=seq,
                                     child_status=status, amount_out=amount_out))


# --- schedule ------------------------------------------------------------------------------


def test_a_twap_spends_every_base_unit_the_first_slices_carrying_the_remainder() -> None:
    assert slice_amounts(twap(amount_in=10, slices=3)) == (4, 3, 3)
    assert slice_amounts(twap(amount_in=9, slices=3)) == (3, 3, 3)


def test_a_dca_cuts_fixed_slices_and_ends_with_the_remainder_or_at_end_at() -> None:
    assert slice_amounts(dca(amount_in=1_000, per_slice=300)) == (300, 300, 300, 100)
    # Slices are due at T0, +60 s, +120 s, +180 s: an endAt at +150 s leaves three.
    ends = dca(amount_in=1_000, per_slice=300, end_at=T0 + timedelta(seconds=150))
    assert schedule(ends, T0) == (300, 300, 300)


@given(amount=st.integers(1, 10**18), slices=st.integers(1, MAX_SLICES))
def test_twap_slices_add_up_to_the_amount_and_differ_by_at_most_one(amount: int,
                                                                    slices: int) -> None:
    if amount < slices:
        return
    amounts = slice_amounts(twap(amount_in=amount, slices=slices))
    assert sum(amounts) == amount and len(amounts) == slices
    assert max(amounts) - min(amounts) <= 1 and min(amounts) >= 1


@given(amount=st.integers(1, 10**12), per=st.integers(1, 10**12))
def test_dca_slices_add_up_to_the_amount(amount: int, per: int) -> None:
    if per > amount or -(-amount // per) > MAX_SLICES:
        return
    amounts = slice_amounts(dca(amount_in=amount, per_slice=per))
    assert sum(amounts) == amount and all(0 < a <= per for a in amounts)


# --- the rule book -----------------------------------------------------------------------------


def _errors(order_type: OrderType, **values: Any) -> dict[str, str]:
    base = {**COMMON, "amount_in": 1_000, "interval_s": 1}
    return {e.field: e.message for e in order_errors(order_type, {**base, **values})}


def test_the_rule_book_refuses_bad_schedules() -> None:
    assert "slices" in _errors(OrderType.TWAP, slices=0)
    assert "slices" in _errors(OrderType.TWAP, slices=MAX_SLICES + 1)
    assert "empty" in _errors(OrderType.TWAP, slices=1_000, amount_in=999)["slices"]
    assert "interval_s" in _errors(OrderType.TWAP, slices=2, interval_s=0)
    assert "required" in _errors(OrderType.TWAP)["slices"]
    bounds = _errors(OrderType.TWAP, slices=2, min_slice_price=Decimal("2"),
                     max_slice_price=Decimal("1"))
    assert "above" in bounds["min_slice_price"]
    assert "more than amountIn" in _errors(OrderType.DCA, amount_per_slice=1_001)[
        "amount_per_slice"]
    assert "at most" in _errors(OrderType.DCA, amount_per_slice=0 + 1, amount_in=10**6)[
        "amount_per_slice"]
    past = _errors(OrderType.DCA, amount_per_slice=10, end_at=T0 - timedelta(seconds=1))
    assert "end_at" not in past  # the decider's check has no "now": only the edge's does
    assert "past" in {e.field: e.message for e in order_errors(
        OrderType.DCA, {**COMMON, "amount_in": 100, "interval_s": 1, "amount_per_slice": 10,
                        "end_at": T0 - timedelta(seconds=1)}, now=T0)}["end_at"]
    misplaced = _errors(OrderType.MARKET, slices=2)
    assert "only for twap orders" in misplaced["slices"]
    assert "only for twap and dca orders" in misplaced["interval_s"]
    assert _errors(OrderType.TWAP, slices=2) == {}


def test_the_decider_refuses_a_bad_parent_and_a_parent_as_a_slice() -> None:
    with pytest.raises(InvalidCommand):
        decide(initial_state(PARENT), execute(twap(amount_in=2, slices=3)), now=T0,
               policy=POLICY)
    with pytest.raises(InvalidCommand):
        decide(initial_state(PARENT), execute(twap(), parent_id="other"), now=T0,
               policy=POLICY)


# --- a twap's life -----------------------------------------------------------------------------


def test_accepting_a_twap_waits_with_its_schedule_and_arms_the_first_slice_now() -> None:
    parent = Parent(twap())
    (accepted,) = parent.events
    assert isinstance(accepted, ParentAccepted) and accepted.slice_amounts == (10**9,) * 3
    assert parent.state.status is S.WAITING and parent.state.owner == "key-1"
    (timer,) = timers_of(parent.state, stall_timeout_ms=15_000)
    assert isinstance(timer.command, SliceDue) and timer.command.slice_index == 0
    assert timer.due_at == T0 and not timer.command.needs_price
    assert decide(parent.state, execute(twap()), now=T0, policy=POLICY) == ()  # a duplicate


def test_slices_are_released_once_each_as_market_orders_of_the_parent() -> None:
    parent = Parent(twap())
    (released,) = parent.due(0)
    assert isinstance(released, SliceReleased) and released.child_id == child_id(PARENT, 0)
    assert parent.due(0) == ()  # the timer again: decided already
    assert parent.due(2) == ()  # not the next slice
    (timer,) = timers_of(parent.state, stall_timeout_ms=15_000)
    assert isinstance(timer.command, SliceDue) and timer.command.slice_index == 1
    assert timer.due_at == T0 + timedelta(seconds=10)
    (child_order,) = commands_after(parent.state, (released,))
    assert isinstance(child_order, ExecuteOrder) and child_order.order_id == released.child_id
    assert isinstance(child_order.terms, MarketTerms)
    assert child_order.terms.amount_in == 10**9 and child_order.parent_id == PARENT
    assert child_order.owner == "key-1"


def test_a_twap_completes_when_its_last_child_ends_with_the_amounts_filled() -> None:
    parent = Parent(twap())
    for index in range(3):
        parent.due(index)
    assert parent.state.status is S.WAITING  # every slice out, children live
    assert timers_of(parent.state, stall_timeout_ms=15_000) == ()
    parent.report(0, 2, S.ROUTING)
    parent.report(0, 6, S.CONFIRMED, amount_out=150_000_000)
    parent.report(1, 6, S.CONFIRMED, amount_out=151_000_000)
    assert parent.report(1, 6, S.CONFIRMED, amount_out=151_000_000) == ()  # a duplicate
    assert parent.report(0, 2, S.ROUTING) == ()  # older than known
    events = parent.report(2, 5, S.FAILED)
    assert [type(e) for e in events] == [ChildProgressed, ParentCompleted]
    completed = events[-1]
    assert isinstance(completed, ParentCompleted)
    assert (completed.amount_in, completed.amount_out) == (2 * 10**9, 301_000_000)
    assert parent.state.status is S.CONFIRMED
    assert parent.state.executed_price == Decimal("150.5")
    assert [e.seq for e in parent.events] == list(range(1, len(parent.events) + 1))
    assert parent.due(3) == () and parent.report(2, 6, S.FAILED) == ()  # ended: nothing


def test_a_parent_none_of_whose_slices_filled_fails() -> None:
    parent = Parent(twap(slices=1, amount_in=5))
    parent.due(0)
    parent.report(0, 4, S.FAILED)
    assert parent.state.status is S.FAILED and parent.state.reason_code == "nothing_filled"


# --- bounds ----------------------------------------------------------------------------------


def test_a_slice_priced_outside_the_bounds_or_unpriced_is_skipped() -> None:
    parent = Parent(twap(slices=4, amount_in=4_000, min_slice_price=Decimal("100"),
                         max_slice_price=Decimal("200")))
    (timer,) = timers_of(parent.state, stall_timeout_ms=15_000)
    assert isinstance(timer.command, SliceDue) and timer.command.needs_price
    (low,) = parent.due(0, Decimal("99.9"))
    assert isinstance(low, SliceSkipped) and low.reason == "price_below_min"
    (high,) = parent.due(1, Decimal("200.1"))
    assert isinstance(high, SliceSkipped) and high.reason == "price_above_max"
    (unpriced,) = parent.due(2, None)
    assert isinstance(unpriced, SliceSkipped) and unpriced.reason == "no_quote"
    (inside,) = parent.due(3, Decimal("150"))
    assert isinstance(inside, SliceReleased) and inside.observed_price == Decimal("150")


def test_a_price_quoted_for_another_size_does_not_count() -> None:
    parent = Parent(twap(min_slice_price=Decimal("1")))
    skipped = parent.send(SliceDue(command_id="x", order_id=PARENT, issued_at=T0,
                                   slice_index=0, token_in=SOL, token_out=USDC, amount_in=7,
                                   observed_price=Decimal("150")))
    assert isinstance(skipped[0], SliceSkipped) and skipped[0].reason == "no_quote"


def test_a_parent_whose_every_slice_was_skipped_ends_failed_in_the_same_decision() -> None:
    parent = Parent(twap(slices=1, amount_in=5, min_slice_price=Decimal("100")))
    events = parent.due(0, Decimal("1"))
    assert [type(e) for e in events] == [SliceSkipped, ParentCompleted]
    assert parent.state.status is S.FAILED


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_stops_the_schedule_cancels_live_children_and_ends_with_the_last() -> None:
    parent = Parent(twap())
    parent.due(0)
    parent.due(1)
    parent.report(0, 6, S.SUBMITTED)
    (requested,) = parent.send(CancelOrder(command_id="c", order_id=PARENT, issued_at=T0,
                                           reason="enough"))
    assert isinstance(requested, ParentCancelRequested)
    cancels = commands_after(parent.state, (requested,))
    # Child 0 is submitted (too late to cancel); child 1 never reported: it may be cancelled.
    assert [(type(c), c.order_id) for c in cancels] == [(CancelOrder, child_id(PARENT, 1))]
    assert timers_of(parent.state, stall_timeout_ms=15_000) == ()  # no more slices
    assert parent.due(2) == ()
    assert parent.send(CancelOrder(command_id="c2", order_id=PARENT, issued_at=T0)) == ()
    parent.report(1, 2, S.CANCELLED)
    events = parent.report(0, 7, S.CONFIRMED, amount_out=150_000_000)
    assert isinstance(events[-1], ParentCancelled) and events[-1].reason == "enough"
    assert parent.state.status is S.CANCELLED
    assert parent.state.amount_out == 150_000_000
    assert parent.state.parent is not None and parent.state.parent.released == 2


def test_cancel_without_live_children_ends_the_parent_at_once() -> None:
    parent = Parent(twap())
    (cancelled,) = parent.send(CancelOrder(command_id="c", order_id=PARENT, issued_at=T0))
    assert isinstance(cancelled, ParentCancelled) and parent.state.status is S.CANCELLED


# --- crashes -------------------------------------------------------------------------------------


def test_an_interrupted_end_is_finished_by_the_timer_of_that_state() -> None:
    parent = Parent(twap(slices=1, amount_in=5))
    parent.due(0)
    events = parent.report(0, 6, S.CONFIRMED, amount_out=9)
    state_before_end = initial_state(PARENT)
    for event in parent.events[:-1]:  # the parent's end never reached the store
        state_before_end = evolve(state_before_end, event)
    (timer,) = timers_of(state_before_end, stall_timeout_ms=15_000)
    assert timer.due_at == state_before_end.updated_at
    (ended,) = decide(state_before_end, timer.command, now=T0, policy=POLICY)
    assert isinstance(ended, ParentCompleted) and isinstance(events[-1], ParentCompleted)
    assert (ended.event_id, ended.seq, ended.amount_in, ended.amount_out) == (
        events[-1].event_id, events[-1].seq, 5, 9)


def test_a_fold_resends_what_a_crash_may_have_left_unsent() -> None:
    parent = Parent(twap())
    parent.due(0)
    parent.due(1)
    parent.report(0, 2, S.ROUTING)
    resent = commands_on_load(parent.state)
    assert [c.order_id for c in resent] == [child_id(PARENT, 1)]  # child 1 never reported
    assert all(isinstance(c, ExecuteOrder) for c in resent)


# --- the child side --------------------------------------------------------------------------


def test_a_child_is_an_ordinary_market_order_that_reports_to_its_parent() -> None:
    parent = Parent(twap())
    (released,) = parent.due(0)
    (child_order,) = commands_after(parent.state, (released,))
    child = initial_state(released.child_id)
    events = decide(child, child_order, now=T0, policy=POLICY)
    assert isinstance(events[0], OrderAccepted) and events[0].parent_id == PARENT
    for event in events:
        child = evolve(child, event)
    assert child.status is S.ROUTING and child.parent_id == PARENT and child.parent is None
    (report,) = commands_after(child, events)
    assert isinstance(report, ChildReport) and report.order_id == PARENT
    assert (report.child_id, report.child_seq, report.child_status) == (
        released.child_id, 2, S.ROUTING)
    assert decide(child, replace(report, order_id=child.order_id), now=T0, policy=POLICY) == ()


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(slices=st.integers(1, 6), outcomes=st.lists(
    st.sampled_from(["skip", "confirm", "fail", "cancel-here"]), min_size=6, max_size=6))
def test_any_run_ends_once_with_contiguous_seqs_and_exact_amounts(slices: int,
                                                                  outcomes: list[str]) -> None:
    parent = Parent(twap(slices=slices, amount_in=slices * 1_000,
                         min_slice_price=Decimal("1")))
    expected_in = 0
    for index in range(slices):
        outcome = outcomes[index]
        if outcome == "cancel-here":
            parent.send(CancelOrder(command_id="c", order_id=PARENT, issued_at=T0))
            break
        if outcome == "skip":
            parent.due(index, Decimal("0.5"))
            continue
        parent.due(index, Decimal("2"))
        if outcome == "confirm":
            parent.report(index, 6, S.CONFIRMED, amount_out=2_000)
            expected_in += 1_000
        else:
            parent.report(index, 5, S.FAILED)
    state = parent.state
    assert state.status in (S.CONFIRMED, S.FAILED, S.CANCELLED)
    assert sum(isinstance(e, ParentCompleted | ParentCancelled) for e in parent.events) == 1
    assert [e.seq for e in parent.events] == list(range(1, len(parent.events) + 1))
    assert state.parent is not None and state.parent.amount_in_filled == expected_in
    assert (state.status is S.CONFIRMED) == (expected_in > 0 and "cancel-here" not in
                                              outcomes[:slices])


def test_a_dca_accepted_after_its_end_ends_at_once_having_spent_nothing() -> None:
    late = dca(end_at=T0 - timedelta(seconds=1))
    parent = Parent(late)
    assert [type(e) for e in parent.events] == [ParentAccepted, ParentCompleted]
    assert parent.state.status is S.FAILED


def test_market_orders_ignore_a_parents_commands() -> None:
    state = OrderState(order_id="m", status=S.ROUTING, seq=2, correlation_id="x",
                       terms=MarketTerms(**COMMON, amount_in=5))
    due = SliceDue(command_id="d", order_id="m", issued_at=T0, slice_index=0, token_in=SOL,
                   token_out=USDC, amount_in=5)
    assert decide(state, due, now=T0, policy=POLICY) == ()


def test_a_fold_resends_the_final_report_of_a_child_that_ended() -> None:
    # A crash between a child's last event and its report: the redelivered command finds the
    # child ended and decides nothing, so only the fold that sees it end can report again.
    parent = Parent(twap())
    (released,) = parent.due(0)
    (child_order,) = commands_after(parent.state, (released,))
    child = initial_state(released.child_id)
    for event in decide(child, child_order, now=T0, policy=POLICY):
        child = evolve(child, event)
    cancel = CancelOrder(command_id="c-child", order_id=child.order_id, issued_at=T0)
    for event in decide(child, cancel, now=T0, policy=POLICY):
        child = evolve(child, event)
    assert child.status is S.CANCELLED
    (report,) = commands_on_load(child)
    assert isinstance(report, ChildReport) and report.order_id == PARENT
    assert (report.child_seq, report.child_status) == (child.seq, S.CANCELLED)
