"""The WebSocket message of one order event, and the order status it carries.

Consumes decoded events (live, from the fan-out) or read-model rows (catch-up); produces the
message of docs/DESIGN.md, encoded once with orjson:

    {"orderId", "status", "type", "seq", "timestamp" (ISO 8601 UTC), "data": {...}}

`status` is the order's status after the event. The read model stores it; live, it is folded
from the previous status by the transition table. Where the previous status is unknown (an
order that began before this process started) the event alone decides it when it can, and
the status is null when it cannot (a CancelRejected, or a confirm-stage failure).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from domain.orders.errors import InvalidStateTransition
from domain.orders.events import (
    EVENT_TYPES,
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
from domain.orders.status import TERMINAL, AttemptStage, OrderStatus
from domain.orders.transitions import next_status

EVENT_CLASSES: Final = {cls.__name__: cls for cls in EVENT_TYPES}
_FAILED_AT: Final = {AttemptStage.ROUTING: OrderStatus.ROUTING, AttemptStage.SUBMIT: OrderStatus.BUILDING}


@dataclass(frozen=True, slots=True)
class OrderMessage:
    """One event of one order, ready to send; `text` is encoded once and shared."""

    order_id: str
    seq: int
    type: str
    status: OrderStatus | None
    text: str
    partition: int = -1  # Kafka coordinates of the event, -1 when unknown
    offset: int = -1
    produced_at_ms: int = 0  # the Kafka record's timestamp (live events only)
    tokens: frozenset[str] = frozenset()  # the order's token symbols and mints, if known

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def with_status(self, status: OrderStatus) -> OrderMessage:
        """The same event with a corrected status (rare: see the module docstring)."""
        body = orjson.loads(self.text)
        body["status"] = status.value
        return replace(self, status=status, text=orjson.dumps(body).decode())


def encode(order_id: str, status: OrderStatus | None, type_name: str, seq: int,
           occurred_at: datetime, data: dict[str, Any] | orjson.Fragment) -> str:
    """The message text; timestamps always in UTC, so live and catch-up copies are equal."""
    return orjson.dumps({
        "orderId": order_id,
        "status": None if status is None else status.value,
        "type": type_name,
        "seq": seq,
        "timestamp": occurred_at.astimezone(UTC).isoformat(),
        "data": data,
    }).decode()


def status_after(previous: OrderStatus | None, event: Event) -> OrderStatus | None:
    """The order's status after `event`, given the status before it if known."""
    if previous is not None:
        try:
            return next_status(previous, type(event))
        except InvalidStateTransition:
            pass  # our idea of the previous status is stale (a missed event): ask the event
    return _implied_status(event)


def next_status_of(previous: OrderStatus | None, type_name: str) -> OrderStatus | None:
    """The transition table by event type name; None when the move is not in the table."""
    cls = EVENT_CLASSES.get(type_name)
    if cls is None:
        return None
    try:
        return next_status(previous, cls)
    except InvalidStateTransition:
        return None


def _implied_status(event: Event) -> OrderStatus | None:
    match event:
        case OrderAccepted():
            return OrderStatus.PENDING
        case OrderWaiting() | PriceObserved():
            return OrderStatus.WAITING
        case RoutingStarted() | RetryScheduled() | OrderTriggered():
            return OrderStatus.ROUTING
        case RouteSelected() | TransactionBuilt():
            return OrderStatus.BUILDING
        case TransactionSubmitted():
            return OrderStatus.SUBMITTED
        case OrderConfirmed():
            return OrderStatus.CONFIRMED
        case OrderFailed():
            return OrderStatus.FAILED
        case OrderCancelled():
            return OrderStatus.CANCELLED
        case OrderExpired():
            return OrderStatus.EXPIRED
        case OrderRedriven():
            return event.stage
        case ExecutionAttemptFailed():
            return _FAILED_AT.get(event.stage)  # a confirm failure: building or submitted
        case _:
            return None  # CancelRejected: building or submitted
