"""The live edge's routes, and the lifespan that opens its resources.

`live_router(settings)` is the one thing the app includes: FastAPI merges a router's
lifespan into the app's, so the fan-out starts after the app's own resources and stops
before them, with no other change to the composition root.

    WS  /api/orders/{order_id}/stream     one order, catch-up then live (api.live.order_stream)
    WS  /api/orders/stream/all            every order, live (api.live.all_stream)
    WS  /api/topics/{topic}/stream        raw topic records (api.live.topic_stream)
    GET /  and /static/{asset}            the dashboard (api.live.dashboard)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, WebSocket

from api.live import dashboard
from api.live.all_stream import AllOrdersStream, Filters
from api.live.config import LiveConfig
from api.live.connection import Closing, Connection, Stream
from api.live.edge import LiveEdge, live_edge, open_live_edge
from api.live.order_stream import OrderStream
from api.live.topic_stream import TopicRequest, TopicStream
from oee.settings import Settings

LiveDep = Annotated[LiveEdge, Depends(live_edge)]


def live_router(settings: Settings, config: LiveConfig | None = None) -> APIRouter:
    """The WebSocket streams and the dashboard, with the lifespan of their resources."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_live_edge(settings, config or LiveConfig()) as live:
            app.state.live = live
            try:
                yield
            finally:
                del app.state.live

    router = APIRouter(lifespan=lifespan)
    router.add_api_websocket_route("/api/orders/stream/all", all_orders_stream)
    router.add_api_websocket_route("/api/orders/{order_id}/stream", order_stream)
    router.add_api_websocket_route("/api/topics/{topic}/stream", topic_stream)
    router.include_router(dashboard.router)
    return router


async def order_stream(websocket: WebSocket, order_id: str, live: LiveDep) -> None:
    """Every event of one order exactly once in seq order, then close 1000 after the last."""
    after_seq = websocket.query_params.get("afterSeq")
    await Connection(websocket).run(_checked(lambda: OrderStream.parse(
        live.fanout, live.history, live.config, order_id, after_seq)))


async def all_orders_stream(websocket: WebSocket, live: LiveDep) -> None:
    """Every order's events from now on, optionally filtered by status, type and token."""
    await Connection(websocket).run(_checked(lambda: AllOrdersStream(
        live.fanout, Filters.parse(websocket.query_params))))


async def topic_stream(websocket: WebSocket, topic: str, live: LiveDep) -> None:
    """Raw records of one engine topic from latest, earliest, an offset or a time."""
    await Connection(websocket).run(_checked(lambda: TopicStream(
        TopicRequest.parse(live.catalog, topic, websocket.query_params), live.catalog,
        live.bootstrap_servers, live.topic_slots)))


def _checked(build: Callable[[], Stream]) -> Stream:
    """Validate the request once the socket is accepted: a bad one gets a close reason
    (a rejected handshake would only tell the client 403)."""

    async def run(connection: Connection) -> Closing:
        return await build()(connection)

    return run
