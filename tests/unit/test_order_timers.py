"""Which timers the order agent arms after appending a decision's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.orders_support import execute_order
from domain.orders import (
    AttemptStage,
    AttemptFailed,
    CancelOrder,
    Command,
    Event,
    ExecuteOrder,
    ExecutionPolicy,
    OrderState,
    OrderType,
    RetryDue,
    RouteFound,
    StallCheck,
    decide,
    fold,
    initial_state,
    timers_after,
    timers_of,
)
from domain.orders.ids import retry_due_id, stall_check_id
from domain.quotes import RouteLeg, RoutingDecision

ORDER = "order-1"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
STALL_MS = 30_000
EXECUTE = execute_order(
    command_id="cmd-execute", order_id=ORDER, issued_at=T0,
    token_in="SOL-mint", token_out="USDC-mint", token_in_symbol="SOL", token_out_symbol="USDC",
    token_in_decimals=9, token_out_decimals=6, amount_in=10**9, slippage_bps=50,
)
DECISION = RoutingDecision(
    token_in="SOL-mint", token_out="USDC-mint", amount_in=10**9, quotes=(),
    legs=(RouteLeg(venue="raydium", amount_in=10**9, amount_out=185 * 10**6, path=("a", "b")),),
    amount_out=185 * 10**6, reason="only venue",
)


def apply(state: OrderState, command: Command) -> tuple[OrderState, tuple[Event, ...]]:
    events = decide(state, command, now=T0, policy=ExecutionPolicy())
    return fold(events, state), events


def routing_failure() -> AttemptFailed:
    return AttemptFailed(
        command_id="cmd-fail", order_id=ORDER, issued_at=T0, attempt=1,
        stage=AttemptStage.ROUTING, error_code="timeout", message="venue timed out",
        transient=True,
    )


def test_an_order_waiting_on_a_stage_gets_a_stall_check_for_its_last_seq() -> None:
    state, events = apply(initial_state(ORDER), EXECUTE)
    (timer,) = timers_after(state, events, stall_timeout_ms=STALL_MS)
    assert isinstance(timer.command, StallCheck)
    assert timer.command.stalled_seq == state.seq == 2
    assert timer.command.command_id == stall_check_id(ORDER, 2)
    assert timer.command.causation_id == events[-1].event_id
    assert (timer.delay_ms, timer.due_at) == (STALL_MS, T0 + timedelta(milliseconds=STALL_MS))


def test_a_scheduled_retry_gets_its_retry_timer_and_no_stall_check() -> None:
    state, _ = apply(initial_state(ORDER), EXECUTE)
    state, events = apply(state, routing_failure())
    (timer,) = timers_after(state, events, stall_timeout_ms=STALL_MS)
    assert isinstance(timer.command, RetryDue)
    assert timer.command.attempt == 2
    assert timer.command.command_id == retry_due_id(ORDER, 2)
    assert (timer.delay_ms, timer.due_at) == (1000, T0 + timedelta(seconds=1))


def test_a_finished_order_or_an_empty_decision_arms_nothing() -> None:
    state, _ = apply(initial_state(ORDER), EXECUTE)
    cancelled, events = apply(
        state, CancelOrder(command_id="c", order_id=ORDER, issued_at=T0, reason=None)
    )
    assert timers_after(cancelled, events, stall_timeout_ms=STALL_MS) == ()
    assert timers_after(state, (), stall_timeout_ms=STALL_MS) == ()


def test_timers_need_the_state_after_the_events() -> None:
    state, events = apply(initial_state(ORDER), EXECUTE)
    built, more = apply(
        state,
        RouteFound(command_id="r", order_id=ORDER, issued_at=T0, attempt=1, decision=DECISION),
    )
    assert timers_after(built, more, stall_timeout_ms=STALL_MS)[0].command == StallCheck(
        command_id=stall_check_id(ORDER, 4), order_id=ORDER,
        issued_at=T0 + timedelta(milliseconds=STALL_MS), correlation_id="cmd-execute",
        causation_id=more[-1].event_id, stalled_seq=4,
    )
    with pytest.raises(ValueError, match="after the events"):
        timers_after(initial_state(ORDER), events, stall_timeout_ms=STALL_MS)


def test_a_worker_taking_over_the_order_re_derives_the_same_timers() -> None:
    accepted, first = apply(initial_state(ORDER), EXECUTE)
    retrying, second = apply(accepted, routing_failure())
    for state, events in ((accepted, first), (retrying, second)):
        taken_over = fold((*first, *second)[: state.seq])  # the new owner folds the store
        assert timers_of(taken_over, stall_timeout_ms=STALL_MS) == timers_after(
            state, events, stall_timeout_ms=STALL_MS
        )


def test_an_order_whose_acceptance_was_cut_short_still_gets_a_stall_check() -> None:
    state, events = apply(initial_state(ORDER), EXECUTE)
    pending = fold(events[:1])
    (timer,) = timers_of(pending, stall_timeout_ms=STALL_MS)
    assert timer.command == StallCheck(
        command_id=stall_check_id(ORDER, 1), order_id=ORDER,
        issued_at=T0 + timedelta(milliseconds=STALL_MS), correlation_id="cmd-execute",
        causation_id=events[0].event_id, stalled_seq=1,
    )
