"""What the routers depend on, opened once by the app's lifespan and handed to each request.

Consumes nothing by itself: `create_app` builds an `Edge` in its lifespan and stores it on the
app; routers receive it through the `EdgeDep` dependency. The ports are Protocols so tests
(and later changes: a live market feed, the read model) can pass their own implementations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request

from api.command_bus import CommandSender
from api.idempotency import RecentKeys
from domain.market import Market
from domain.orders.status import OrderStatus
from domain.tokens import TokenRegistry


class MarketSource(Protocol):
    """The market as this process sees it now (a fixed snapshot today, a live feed later)."""

    def current(self) -> Market: ...


class OrderStatuses(Protocol):
    """The current status of an order as the read model knows it, or None if it does not."""

    async def status_of(self, order_id: str) -> OrderStatus | None: ...


class UnknownStatuses:
    """An edge without a read model: it knows no order's status, so the order agent alone
    answers every cancel (see `cancel_order`; `api.order_statuses` is the read model's)."""

    async def status_of(self, order_id: str) -> OrderStatus | None:
        return None


@dataclass(frozen=True, slots=True)
class Edge:
    """Everything a request of the HTTP edge may use."""

    commands: CommandSender
    registry: TokenRegistry
    market: MarketSource
    statuses: OrderStatuses
    recent_keys: RecentKeys
    clock: Callable[[], datetime]


def edge(request: Request) -> Edge:
    found = getattr(request.app.state, "edge", None)
    if not isinstance(found, Edge):
        raise RuntimeError("the app is not started: its lifespan opens the edge's resources")
    return found


EdgeDep = Annotated[Edge, Depends(edge)]
