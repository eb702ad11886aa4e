"""What the routers depend on: the resources the process's bootstrap opened, read from app state.

Consumes nothing by itself: the API process's composition root (`oee.api_bootstrap`) opens
every resource once and `api.app.create_app` stores the resulting `Edge` on the app for the
lifetime of its one lifespan. Routers receive the parts they use through the `Annotated`
dependencies below (`EdgeDep`, `ReadDep`, `LiveDep`). The ports are Protocols, so tests can
pass their own implementations and the edge never imports the projector or the workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection

from api.auth.guard import Authenticator
from api.chain_check import ChainVerdict
from api.command_bus import CommandSender
from api.idempotency import RecentKeys
from api.live.edge import LiveEdge
from domain.market import Market
from domain.orders.status import OrderStatus
from domain.tokens import TokenRegistry


class MarketSource(Protocol):
    """The market as this process sees it now (a fixed snapshot, or the market topics')."""

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
class Owner:
    """Whose an order is, as the read model knows it (`key_id` None: placed before auth)."""

    key_id: str | None


class OrderRecords(Protocol):
    """What the read model knows of an order's owner and accepted terms (None: nothing)."""

    async def owner_of(self, order_id: str) -> Owner | None: ...

    async def accepted_fingerprint(self, order_id: str) -> tuple[object, ...] | None: ...


class UnknownOrders:
    """An edge without a read model knows no order: only in-process idempotency applies."""

    async def owner_of(self, order_id: str) -> Owner | None:
        return None

    async def accepted_fingerprint(self, order_id: str) -> tuple[object, ...] | None:
        return None


class ProjectionMonitor(Protocol):
    """How far the read model (and the stream workers) are behind Kafka, as JSON."""

    async def projection(self) -> dict[str, Any]: ...  # has "lag" and "partitions"

    async def shadow(self) -> dict[str, Any] | None: ...  # a rebuild run anywhere

    async def rebuild_running(self) -> bool: ...

    async def consumer_lags(self) -> list[dict[str, Any]]: ...

    async def event_partitions(self) -> int: ...


class Rebuilds(Protocol):
    """This process's background rebuild of the read model."""

    @property
    def running(self) -> bool: ...

    @property
    def last(self) -> dict[str, Any] | None: ...  # the last progress report

    def start(self) -> None: ...


class OrderChains(Protocol):
    """One order's hash chain recomputed from the event store (`api.chain_check`)."""

    async def verify(self, order_id: str, partition: int,
                     first_offset: int) -> ChainVerdict: ...


@dataclass(frozen=True, slots=True)
class ReadSide:
    """The read model as the query, projection and metrics routes use it."""

    pool: AsyncConnectionPool  # the process's one pool on the read model
    schema: str
    monitor: ProjectionMonitor
    rebuilds: Rebuilds
    max_projection_lag: int
    chains: OrderChains | None = None  # None: ?verify=true is not offered (503)


@dataclass(frozen=True, slots=True)
class Edge:
    """Everything a request of the HTTP edge may use. `read` and `live` are None in an edge
    built without a read side (command-edge tests): their routes are not mounted then."""

    commands: CommandSender
    registry: TokenRegistry
    market: MarketSource
    statuses: OrderStatuses
    recent_keys: RecentKeys
    clock: Callable[[], datetime]
    auth: Authenticator
    orders: OrderRecords = UnknownOrders()
    read: ReadSide | None = None
    live: LiveEdge | None = None
    # How long after a request its command may be appended and still count (`api.acceptance`).
    accept_budget: timedelta = timedelta(seconds=3)
    # The shortest intervalS of a twap/dca order (PARENT_MIN_INTERVAL_S).
    min_interval_s: int = 1


def edge(connection: HTTPConnection) -> Edge:
    found = getattr(connection.app.state, "edge", None)
    if not isinstance(found, Edge):
        raise RuntimeError("the app is not started: its lifespan opens the edge's resources")
    return found


# The dependencies are coroutines although they never wait: FastAPI runs a plain function
# dependency in its thread pool, two thread hand-offs per request for reading app.state.
async def _edge(connection: HTTPConnection) -> Edge:
    return edge(connection)


async def _read_side(connection: HTTPConnection) -> ReadSide:
    found = edge(connection).read
    if found is None:
        raise RuntimeError("this edge was built without a read side")
    return found


async def _live_edge(connection: HTTPConnection) -> LiveEdge:
    found = edge(connection).live
    if found is None:
        raise RuntimeError("this edge was built without the live streams")
    return found


EdgeDep = Annotated[Edge, Depends(_edge)]
ReadDep = Annotated[ReadSide, Depends(_read_side)]
LiveDep = Annotated[LiveEdge, Depends(_live_edge)]
