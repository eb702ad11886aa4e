"""`evolve(state, event) -> state`: fold one event into the order state.

Every event is checked against the transition table, the per-order `seq` (the next one,
no gaps) and the attempt it belongs to, so a bug in a writer fails fast instead of
corrupting an order's history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import assert_never

from domain.orders.errors import InvalidStateTransition, OrderMismatch, SequenceGap
from domain.orders.events import (
    PARENT_EVENTS,
    AttemptError,
    ChildProgressed,
    ParentAccepted,
    ParentCancelled,
    ParentCancelRequested,
    ParentCompleted,
    SliceReleased,
    SliceSkipped,
    CancelRejected,
    Event,
    ExecutionAttemptFailed,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderRedriven,
    OrderTriggered,
    OrderWaiting,
    PriceObserved,
    RetryScheduled,
    RouteSelected,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
)
from domain.orders.parent_evolve import evolve_parent
from domain.orders.state import OrderState, initial_state
from domain.orders.status import OrderStatus
from domain.orders.transitions import next_status


def evolve(state: OrderState, event: Event) -> OrderState:
    """The state after `event`; raises `InvalidStateTransition` (or `SequenceGap`)."""
    if isinstance(event, PARENT_EVENTS):  # a twap/dca parent: its own lifecycle
        return evolve_parent(state, event)
    if event.order_id != state.order_id:
        raise OrderMismatch(f"event for order {event.order_id} applied to {state.order_id}")
    if event.seq != state.seq + 1:
        raise SequenceGap(state.order_id, state.seq + 1, event.seq)
    status = next_status(state.status, type(event))
    _check_attempt(state, event)
    history = state.status_history
    if status is not state.status and status is not None:
        history = (*history, (status, event.occurred_at))
    moved = replace(
        state, status=status, seq=event.seq, updated_at=event.occurred_at, status_history=history
    )
    return _fold_payload(moved, event)


def fold(events: Iterable[Event], initial: OrderState | None = None) -> OrderState:
    """The state after all `events`, from `initial` or from the first event's order."""
    state = initial
    for event in events:
        if state is None:
            state = initial_state(event.order_id)
        state = evolve(state, event)
    if state is None:
        raise ValueError("fold() of no events needs an initial state")
    return state


def recorded_statuses(events: Iterable[Event]) -> list[OrderStatus]:
    """The status after each of `events` (the histories of several orders, each in seq order,
    possibly interleaved), folded as their writer folds them: what a writer records in each
    event's envelope. For tools that write histories (benchmarks, test harnesses); a reader
    takes the status from the envelope instead."""
    states: dict[str, OrderState] = {}
    after: list[OrderStatus] = []
    for event in events:
        state = evolve(states.get(event.order_id) or initial_state(event.order_id), event)
        states[event.order_id] = state
        assert state.status is not None  # evolve never leaves an accepted order without one
        after.append(state.status)
    return after


def _check_attempt(state: OrderState, event: Event) -> None:
    """Attempts only move forward one at a time; reports belong to the current one."""
    match event:
        case RoutingStarted(attempt=attempt) | RetryScheduled(next_attempt=attempt):
            expected = state.attempt + 1
        case (
            RouteSelected(attempt=attempt)
            | TransactionBuilt(attempt=attempt)
            | TransactionSubmitted(attempt=attempt)
            | ExecutionAttemptFailed(attempt=attempt)
            | OrderConfirmed(attempt=attempt)
            | OrderRedriven(attempt=attempt)
        ):
            expected = state.attempt
        case _:
            return
    if attempt != expected:
        raise InvalidStateTransition(
            f"order {state.order_id}: {type(event).__name__} for attempt {attempt}, "
            f"expected attempt {expected}"
        )


def _fold_payload(state: OrderState, event: Event) -> OrderState:
    match event:
        case OrderAccepted():
            return replace(state, terms=event.terms, owner=event.owner,
                           correlation_id=event.correlation_id, parent_id=event.parent_id)
        case RoutingStarted():
            # A new attempt: the previous attempt's route and transaction are dead.
            return replace(
                state,
                attempt=event.attempt,
                retry_pending=None,
                retry_at=None,
                min_amount_out=None,
                signature=None,
                slot=None,
            )
        case RouteSelected():
            return replace(state, decision=event.decision, min_amount_out=event.min_amount_out)
        case TransactionBuilt():
            return replace(state, signature=event.signature)
        case TransactionSubmitted():
            return replace(state, signature=event.signature, slot=event.slot)
        case ExecutionAttemptFailed():
            error = AttemptError(
                attempt=event.attempt,
                stage=event.stage,
                error_code=event.error_code,
                message=event.message,
                transient=event.transient,
                occurred_at=event.occurred_at,
            )
            return replace(state, errors=(*state.errors, error))
        case RetryScheduled():
            return replace(state, retry_pending=event.next_attempt, retry_at=event.retry_at)
        case OrderConfirmed():
            return replace(
                state,
                signature=event.signature,
                amount_out=event.amount_out,
                executed_price=event.executed_price,
                slot=event.slot,
            )
        case OrderFailed():
            return replace(state, reason_code=event.reason_code, reason=event.message)
        case OrderCancelled():
            return replace(state, reason=event.reason)
        case CancelRejected():
            return replace(state, cancel_rejected_attempt=state.attempt)
        case OrderRedriven() | OrderWaiting() | OrderExpired():
            return state
        case PriceObserved():
            return replace(state, best_price=event.best_price, best_price_at=event.occurred_at)
        case OrderTriggered():
            return replace(state, triggered_price=event.observed_price)
        case (ParentAccepted() | SliceReleased() | SliceSkipped() | ChildProgressed()
              | ParentCancelRequested() | ParentCompleted() | ParentCancelled()):
            raise InvalidStateTransition(f"{type(event).__name__} is a parent's event")
        case _:
            assert_never(event)
