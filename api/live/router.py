"""The live edge's routes: WebSocket streams fed by the process's fan-out, and the dashboard.

    WS  /api/orders/{order_id}/stream     one order, catch-up then live (api.live.order_stream)
    WS  /api/orders/stream/all            every order, live (api.live.all_stream)
    WS  /api/topics/{topic}/stream        raw topic records (api.live.topic_stream)
    GET /  and /static/{asset}            the dashboard (api.live.dashboard)

The resources come from app state (`LiveDep`); the bootstrap opened them.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, WebSocket

from api.deps import LiveDep
from api.live import dashboard
from api.live.all_stream import AllOrdersStream, Filters
from api.live.connection import Closing, Connection, Stream
from api.live.order_stream import OrderStream
from api.live.topic_stream import TopicRequest, TopicStream

router = APIRouter()


@router.websocket("/api/orders/stream/all")
async def all_orders_stream(websocket: WebSocket, live: LiveDep) -> None:
    """Every order's events from now on, optionally filtered by status, type and token."""
    await Connection(websocket).run(_checked(lambda: AllOrdersStream(
        live.fanout, Filters.parse(websocket.query_params))))


@router.websocket("/api/orders/{order_id}/stream")
async def order_stream(websocket: WebSocket, order_id: str, live: LiveDep) -> None:
    """Every event of one order exactly once in seq order, then close 1000 after the last."""
    after_seq = websocket.query_params.get("afterSeq")
    await Connection(websocket).run(_checked(lambda: OrderStream.parse(
        live.fanout, live.history, live.config, order_id, after_seq)))


@router.websocket("/api/topics/{topic}/stream")
async def topic_stream(websocket: WebSocket, topic: str, live: LiveDep) -> None:
    """Raw records of one engine topic from latest, earliest, an offset or a time."""
    await Connection(websocket).run(_checked(lambda: TopicStream(
        TopicRequest.parse(live.catalog, topic, websocket.query_params), live.catalog,
        live.bootstrap_servers, live.topic_slots)))


router.include_router(dashboard.router)


def _checked(build: Callable[[], Stream]) -> Stream:
    """Validate the request once the socket is accepted: a bad one gets a close reason
    (a rejected handshake would only tell the client 403)."""

    async def run(connection: Connection) -> Closing:
        return await build()(connection)

    return run
