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
    WAITING = "waiting"  # conditional orders (limit, sniper) until their trigger fires
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # a GTD order whose time ran out before it was executing


class OrderType(StrEnum):
    """How an order decides when to execute: now (market), at a price (limit), on a pool
    event (sniper), or as a parent releasing market slices over time (twap, dca)."""

    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"
    TWAP = "twap"  # amountIn in `slices` equal child orders, one every `intervalS`
    DCA = "dca"  # `amountPerSlice` every `intervalS` until amountIn is spent or `endAt`


class TimeInForce(StrEnum):
    """How long an order may wait: until cancelled, or until its `expires_at`."""

    GTC = "GTC"  # good till cancelled
    GTD = "GTD"  # good till date


class Trigger(StrEnum):
    """What a conditional order waits for (and, in `OrderTriggered`, what fired it)."""

    PRICE = "price"  # limit: the net executable price for the order's size reached the limit
    POOL_CREATED = "pool_created"  # sniper: a pool of the wanted token was listed
    LIQUIDITY = "liquidity"  # sniper: a pool of the wanted token crossed a liquidity threshold


class AttemptStage(StrEnum):
    """The stage of an execution attempt that reported a failure."""

    ROUTING = "routing"
    SUBMIT = "submit"
    CONFIRM = "confirm"


TERMINAL: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
)

SNIPER_TRIGGERS: Final[frozenset[Trigger]] = frozenset({Trigger.POOL_CREATED, Trigger.LIQUIDITY})

# Where a cancel or an expiry can still end an order: no transaction of it exists yet, so none
# can land. From `building` on, the swap may reach the chain and the order must see it through.
CANCELLABLE: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.PENDING, OrderStatus.WAITING, OrderStatus.ROUTING}
)

# Which statuses a failure of each stage of an attempt can happen in (confirm also while
# `building`: the submission report may have been lost in a crash).
STAGE_STATUSES: Final[dict[AttemptStage, frozenset[OrderStatus]]] = {
    AttemptStage.ROUTING: frozenset({OrderStatus.ROUTING}),
    AttemptStage.SUBMIT: frozenset({OrderStatus.BUILDING}),
    AttemptStage.CONFIRM: frozenset({OrderStatus.BUILDING, OrderStatus.SUBMITTED}),
}

# Statuses in which the order waits on a routing or execution stage to report back.
IN_FLIGHT: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.ROUTING, OrderStatus.BUILDING, OrderStatus.SUBMITTED}
)
