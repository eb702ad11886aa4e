"""Work items: what the order aggregate asks its stages to do next (pure).

A stage never reads the aggregate's state; each item carries everything the stage needs, so
stages stay stateless and can run anywhere in the consumer group. `work_after` derives the
items from the state the aggregate just reached, which is also how the watchdog re-drives a
stalled stage: it asks for the same work again.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.orders.events import Event, OrderRedriven, RoutingStarted, TransactionBuilt
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus
from domain.quotes import RouteLeg


@dataclass(frozen=True, slots=True)
class QuoteRoute:
    """Ask the routing stage for the best route of one attempt."""

    order_id: str
    attempt: int
    token_in: str
    token_out: str
    amount_in: int


@dataclass(frozen=True, slots=True)
class ExecuteSwap:
    """Ask the execution stage to submit (or, if already submitted, follow) one transaction."""

    order_id: str
    attempt: int
    signature: str
    legs: tuple[RouteLeg, ...]
    min_amount_out: int


Work = QuoteRoute | ExecuteSwap


def work_after(state: OrderState, events: tuple[Event, ...]) -> tuple[Work, ...]:
    """The stage work the events just appended call for (at most one item)."""
    for event in reversed(events):
        if isinstance(event, RoutingStarted):
            return (_quote(state),)
        if isinstance(event, TransactionBuilt):
            return (_execute(state),)
        if isinstance(event, OrderRedriven):
            return _redrive(state)
    return ()


def _redrive(state: OrderState) -> tuple[Work, ...]:
    if state.status is OrderStatus.ROUTING:
        return (_quote(state),)
    if state.status in (OrderStatus.BUILDING, OrderStatus.SUBMITTED) and state.signature:
        return (_execute(state),)
    return ()


def _quote(state: OrderState) -> QuoteRoute:
    assert state.terms is not None  # an order being routed was accepted
    return QuoteRoute(
        order_id=state.order_id,
        attempt=state.attempt,
        token_in=state.terms.token_in,
        token_out=state.terms.token_out,
        amount_in=state.terms.amount_in,
    )


def _execute(state: OrderState) -> ExecuteSwap:
    assert state.decision is not None and state.signature is not None
    return ExecuteSwap(
        order_id=state.order_id,
        attempt=state.attempt,
        signature=state.signature,
        legs=state.decision.legs,
        min_amount_out=state.min_amount_out or 0,
    )
