"""The live edge's routes: WebSocket streams fed by the process's fan-out, and the dashboard.

    WS  /api/orders/{order_id}/stream     one order, catch-up then live (api.live.order_stream)
    WS  /api/orders/stream/all            every order, live (api.live.all_stream)
    WS  /api/topics/{topic}/stream        raw topic records (api.live.topic_stream)
    GET /  and /static/{asset}            the dashboard (api.live.dashboard)

The resources come from app state (`LiveDep`); the bootstrap opened them. Every stream needs
a key (`api.auth.guard.presented_on_socket`: a header or `?token=`): the order streams the
read scope (and only the viewer's orders, see each stream), the raw topics admin. A key with
too many streams open, or a process at its cap, is closed 1013 with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, WebSocket

from api.auth.guard import authenticator, presented_on_socket
from api.auth.keys import Principal, Scope
from api.auth.limits import SocketsFull
from api.deps import LiveDep
from api.errors import ApiError
from api.live import dashboard
from api.live.all_stream import AllOrdersStream, Filters
from api.live.connection import (
    FORBIDDEN,
    TRY_AGAIN_LATER,
    UNAUTHENTICATED,
    Closing,
    Connection,
    Stream,
    StreamClosed,
)
from api.live.order_stream import OrderStream
from api.live.topic_stream import TopicRequest, TopicStream

router = APIRouter()


@router.websocket("/api/orders/stream/all")
async def all_orders_stream(websocket: WebSocket, live: LiveDep) -> None:
    """Every order's events from now on, optionally filtered by status, type and token."""
    await Connection(websocket).run(_authorised(websocket, Scope.READ, lambda who: AllOrdersStream(
        live.fanout, Filters.parse(websocket.query_params, who))))


@router.websocket("/api/orders/{order_id}/stream")
async def order_stream(websocket: WebSocket, order_id: str, live: LiveDep) -> None:
    """Every event of one order exactly once in seq order, then close 1000 after the last."""
    after_seq = websocket.query_params.get("afterSeq")
    await Connection(websocket).run(_authorised(websocket, Scope.READ, lambda who: OrderStream.parse(
        live.fanout, live.history, live.config, order_id, after_seq, who)))


@router.websocket("/api/topics/{topic}/stream")
async def topic_stream(websocket: WebSocket, topic: str, live: LiveDep) -> None:
    """Raw records of one engine topic from latest, earliest, an offset or a time."""
    await Connection(websocket).run(_authorised(websocket, Scope.ADMIN, lambda who: TopicStream(
        TopicRequest.parse(live.catalog, topic, websocket.query_params), live.catalog,
        live.bootstrap_servers, live.topic_slots)))


router.include_router(dashboard.router)


def _authorised(websocket: WebSocket, scope: Scope,
                build: Callable[[Principal], Stream]) -> Stream:
    """Check the key, hold a stream slot, then validate the request, all once the socket is
    accepted: each refusal gets a close code and reason (a rejected handshake would only
    tell the client 403)."""

    async def run(connection: Connection) -> Closing:
        guard = authenticator(websocket)
        try:
            who = await guard.principal(presented_on_socket(websocket))
        except ApiError as refused:
            raise StreamClosed(UNAUTHENTICATED, refused.message) from None
        if not who.may(scope):
            raise StreamClosed(FORBIDDEN, f"this stream needs a key with the {scope.value} "
                                          f"scope (this key has {who.scope.value})")
        try:
            give_back = guard.sockets.take(who.key_id)
        except SocketsFull as full:
            raise StreamClosed(TRY_AGAIN_LATER, str(full)) from None
        try:
            return await build(who)(connection)
        finally:
            give_back()

    return run
