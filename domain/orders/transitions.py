"""The order lifecycle, written once: (status, event type) -> next status.

`None` is the status of an order not accepted yet; `SAME` means the event is legal and
leaves the status as it is. Any pair missing from the table is an `InvalidStateTransition`.

Conditional orders (limit, sniper) go pending -> waiting; when their trigger fires,
`OrderTriggered` moves them to routing and the first attempt starts exactly as a market
order's does (`RoutingStarted`, routing -> routing), so everything from routing on is shared.
A cancel or an expiry ends an order only while no transaction of it exists (pending, waiting,
routing: `status.CANCELLABLE`); later the swap may land, so the order is seen through.
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType
from typing import Final, Literal, Mapping

from domain.orders.errors import InvalidStateTransition
from domain.orders.events import (
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
from domain.orders.status import STAGE_STATUSES, AttemptStage, OrderStatus


class Unchanged(Enum):
    """Sentinel type of `SAME`: the event does not change the status."""

    SAME = "same"


SAME: Final = Unchanged.SAME
Target = OrderStatus | Literal[Unchanged.SAME]

_PENDING, _ROUTING, _BUILDING, _SUBMITTED = (
    OrderStatus.PENDING,
    OrderStatus.ROUTING,
    OrderStatus.BUILDING,
    OrderStatus.SUBMITTED,
)
_WAITING = OrderStatus.WAITING

TRANSITIONS: Final[Mapping[tuple[OrderStatus | None, type[Event]], Target]] = MappingProxyType(
    {
        (None, OrderAccepted): _PENDING,
        (_PENDING, RoutingStarted): _ROUTING,
        (_ROUTING, RoutingStarted): _ROUTING,  # the next attempt after a backoff
        (_ROUTING, RouteSelected): _BUILDING,
        (_BUILDING, TransactionBuilt): _BUILDING,
        (_BUILDING, TransactionSubmitted): _SUBMITTED,
        (_SUBMITTED, OrderConfirmed): OrderStatus.CONFIRMED,
        (_ROUTING, ExecutionAttemptFailed): SAME,
        (_BUILDING, ExecutionAttemptFailed): SAME,
        (_SUBMITTED, ExecutionAttemptFailed): SAME,
        (_ROUTING, RetryScheduled): _ROUTING,
        (_BUILDING, RetryScheduled): _ROUTING,
        (_SUBMITTED, RetryScheduled): _ROUTING,
        (_PENDING, OrderFailed): OrderStatus.FAILED,
        (_ROUTING, OrderFailed): OrderStatus.FAILED,
        (_BUILDING, OrderFailed): OrderStatus.FAILED,
        (_SUBMITTED, OrderFailed): OrderStatus.FAILED,
        (_PENDING, OrderCancelled): OrderStatus.CANCELLED,
        (_WAITING, OrderCancelled): OrderStatus.CANCELLED,
        (_ROUTING, OrderCancelled): OrderStatus.CANCELLED,
        (_ROUTING, CancelRejected): SAME,
        (_BUILDING, CancelRejected): SAME,
        (_SUBMITTED, CancelRejected): SAME,
        (_ROUTING, OrderRedriven): SAME,
        (_BUILDING, OrderRedriven): SAME,
        (_SUBMITTED, OrderRedriven): SAME,
        # conditional orders
        (_PENDING, OrderWaiting): _WAITING,
        (_WAITING, PriceObserved): SAME,
        (_WAITING, OrderTriggered): _ROUTING,  # RoutingStarted(attempt 1) follows
        (_PENDING, OrderExpired): OrderStatus.EXPIRED,
        (_WAITING, OrderExpired): OrderStatus.EXPIRED,
        (_ROUTING, OrderExpired): OrderStatus.EXPIRED,
    }
)


def implied_status(event_type: type[Event], stage: str | None = None) -> OrderStatus | None:
    """The status after an event of `event_type` when the event alone tells it, else None.

    For records written before the envelope carried the writer's status (v1, v2): the table
    gives every status the event can leave (SAME: the one it came from); one is the answer. An
    attempt's failure narrows them by its `stage` (`STAGE_STATUSES`), a re-drive names its
    `stage` itself. Ambiguous: a CancelRejected, a confirm-stage failure (building or
    submitted)."""
    if event_type is OrderRedriven and stage is not None:
        return OrderStatus(stage)
    after = {source if target is SAME else target
             for (source, cls), target in TRANSITIONS.items() if cls is event_type}
    if event_type is ExecutionAttemptFailed and stage is not None:
        after &= STAGE_STATUSES[AttemptStage(stage)]
    (only,) = after if len(after) == 1 else (None,)
    return only


def next_status(status: OrderStatus | None, event_type: type[Event]) -> OrderStatus | None:
    """The status after an event of `event_type`; raises `InvalidStateTransition`."""
    target = TRANSITIONS.get((status, event_type))
    if target is None:
        raise InvalidStateTransition(
            f"{event_type.__name__} is not allowed in status {status or 'not accepted'}"
        )
    return status if target is SAME else target
