"""The order aggregate's state: what `evolve` folds from the events, what `decide` reads.

A frozen value; `initial_state` is the state of an order nothing has happened to yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.orders.events import AttemptError
from domain.orders.parent_state import ParentProgress
from domain.orders.status import IN_FLIGHT, TERMINAL, OrderStatus
from domain.orders.terms import OrderTerms
from domain.quotes import RoutingDecision


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """One order, folded. `status is None` means not accepted (yet)."""

    order_id: str
    status: OrderStatus | None = None
    seq: int = 0
    correlation_id: str | None = None
    terms: OrderTerms | None = None  # what was accepted (OrderAccepted.terms)
    owner: str | None = None  # who placed it (OrderAccepted.owner); None before auth
    attempt: int = 0  # the attempt routed / executed now (0 before the first)
    retry_pending: int | None = None  # the next attempt while its backoff runs
    retry_at: datetime | None = None  # when that backoff ends
    decision: RoutingDecision | None = None  # the latest, possibly of an earlier attempt
    min_amount_out: int | None = None  # of the current attempt's route
    signature: str | None = None  # of the current attempt's transaction
    slot: int | None = None
    errors: tuple[AttemptError, ...] = ()
    cancel_rejected_attempt: int | None = None  # a cancel was rejected during this attempt
    amount_out: int | None = None
    executed_price: Decimal | None = None
    reason_code: str | None = None  # why the order failed
    reason: str | None = None  # failure message or cancel reason
    best_price: Decimal | None = None  # the latest PriceObserved of a waiting order
    best_price_at: datetime | None = None
    triggered_price: Decimal | None = None  # what the order's size fetched when it fired
    status_history: tuple[tuple[OrderStatus, datetime], ...] = ()  # every status change
    updated_at: datetime | None = None
    parent_id: str | None = None  # a slice of this twap/dca parent (OrderAccepted.parent_id)
    parent: ParentProgress | None = None  # a twap/dca parent's schedule and children

    def entered_at(self, status: OrderStatus) -> datetime | None:
        """When the order last entered `status`, or None if it never did."""
        for entered, at in reversed(self.status_history):
            if entered is status:
                return at
        return None


def initial_state(order_id: str) -> OrderState:
    return OrderState(order_id=order_id)


def is_terminal(state: OrderState) -> bool:
    return state.status in TERMINAL


def awaits_stage(state: OrderState) -> bool:
    """True when the order waits on the routing or execution stage (not on a backoff)."""
    return state.status in IN_FLIGHT and state.retry_pending is None


def is_interrupted(state: OrderState) -> bool:
    """Did a crash cut the order's last decision short (only part of it was appended)?"""
    if state.status is OrderStatus.PENDING:
        return True  # OrderAccepted without RoutingStarted (or OrderWaiting)
    if state.status is OrderStatus.ROUTING and state.attempt == 0:
        return True  # OrderTriggered without RoutingStarted
    if state.status is OrderStatus.BUILDING and state.signature is None:
        return True  # RouteSelected without TransactionBuilt
    # ExecutionAttemptFailed without the RetryScheduled / OrderFailed that follows it.
    return unanswered_failure(state) is not None


def unanswered_failure(state: OrderState) -> AttemptError | None:
    """The current attempt's failure if no retry or failure of the order answered it yet."""
    if state.errors and state.retry_pending is None and not is_terminal(state):
        last = state.errors[-1]
        if last.attempt == state.attempt:
            return last
    return None
