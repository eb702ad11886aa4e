"""Order statuses and order types: the vocabulary shown to clients and stored in events.

The string values are part of the public contract (API, WebSocket, Avro payloads), so a
member may be added but never renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle (see `transitions.TRANSITIONS`)."""

    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    WAITING = "waiting"  # conditional orders (limit, sniper): not reachable yet
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # GTC / GTD expiry: not reachable yet


class OrderType(StrEnum):
    """How an order decides when to execute. Only `market` is executable for now."""

    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"


class AttemptStage(StrEnum):
    """The stage of an execution attempt that reported a failure."""

    ROUTING = "routing"
    SUBMIT = "submit"
    CONFIRM = "confirm"


TERMINAL: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
)

# Statuses in which the order waits on a routing or execution stage to report back.
IN_FLIGHT: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.ROUTING, OrderStatus.BUILDING, OrderStatus.SUBMITTED}
)
