"""The order aggregate's state: what `evolve` folds from the events, what `decide` reads.

A frozen value; `initial_state` is the state of an order nothing has happened to yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.orders.events import AttemptError, OrderAccepted
from domain.orders.status import (
    IN_FLIGHT,
    TERMINAL,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trigger,
)
from domain.quotes import RoutingDecision


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTerms:
    """What the trader asked for, as accepted."""

    order_type: OrderType
    token_in: str
    token_out: str
    token_in_symbol: str
    token_out_symbol: str
    token_in_decimals: int
    token_out_decimals: int
    amount_in: int
    slippage_bps: int
    client_order_id: str | None
    # Conditional terms (see `commands.ExecuteOrder`); the defaults are a market order's.
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expires_at: datetime | None = None
    trigger: Trigger | None = None
    min_liquidity_usd: Decimal | None = None
    max_price: Decimal | None = None

    @property
    def waits_for(self) -> Trigger | None:
        """What the order waits for before it executes; None for a market order."""
        if self.order_type is OrderType.LIMIT:
            return Trigger.PRICE
        if self.order_type is OrderType.SNIPER:
            return self.trigger
        return None

    def expired_at(self, now: datetime) -> bool:
        """Has a GTD order's time run out by `now`?"""
        return self.expires_at is not None and now >= self.expires_at

    @classmethod
    def of(cls, event: OrderAccepted) -> OrderTerms:
        return cls(
            order_type=event.order_type,
            token_in=event.token_in,
            token_out=event.token_out,
            token_in_symbol=event.token_in_symbol,
            token_out_symbol=event.token_out_symbol,
            token_in_decimals=event.token_in_decimals,
            token_out_decimals=event.token_out_decimals,
            amount_in=event.amount_in,
            slippage_bps=event.slippage_bps,
            client_order_id=event.client_order_id,
            limit_price=event.limit_price,
            time_in_force=event.time_in_force,
            expires_at=event.expires_at,
            trigger=event.trigger,
            min_liquidity_usd=event.min_liquidity_usd,
            max_price=event.max_price,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """One order, folded. `status is None` means not accepted (yet)."""

    order_id: str
    status: OrderStatus | None = None
    seq: int = 0
    correlation_id: str | None = None
    terms: OrderTerms | None = None  # what was accepted
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
