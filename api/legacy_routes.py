"""The URLs that clients of the engines this one replaces still call, served additively.

Consumes the resources the process's bootstrap opened, through `api.deps` (the read side's
pool, the live edge), like the canonical routers;
produces, without changing any canonical route (docs/COMPATIBILITY.md has the whole table):

- `GET /api/health`        liveness with a timestamp (`GET /health` is the canonical one);
- `GET /api/orders/stats`  the order figures of `GET /api/metrics` (read side only);
- `WS  /?orderId=ID`       the stream of `WS /api/orders/{ID}/stream`, the same implementation
                           (read side only; `afterSeq` works here too).

`install_legacy_routes` must run before the canonical routers are included: the router takes
the first route that matches, and `/api/orders/stats` must win over `/api/orders/{order_id}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Depends, FastAPI, WebSocket

from api import health
from api.auth.guard import needs
from api.auth.keys import Scope
from api.deps import LiveDep, ReadDep
from api.live.connection import BAD_REQUEST, NOT_FOUND
from api.live.router import order_stream
from api.metrics import order_figures
from api.order_ids import canonical_order_id

ORDER_ID_PARAM: Final = "orderId"  # the query parameter of the older WebSocket URL


def install_legacy_routes(app: FastAPI, *, read_side: bool) -> None:
    """The older engines' URLs on `app`; the read-side ones only where the read side runs."""
    app.include_router(_edge_router())
    if read_side:
        app.include_router(_read_side_router())


def _edge_router() -> APIRouter:
    router = APIRouter(tags=["compatibility"])
    router.add_api_route("/api/health", health.health, response_model=health.Health,
                         deprecated=True, summary="Liveness (the canonical URL is GET /health)")
    return router


def _read_side_router() -> APIRouter:
    router = APIRouter(tags=["compatibility"])

    @router.get("/api/orders/stats", summary="Order counts by status and type, venue share, "
                "success rate and lifecycle (the order figures of GET /api/metrics)",
                dependencies=[Depends(needs(Scope.ADMIN))])
    async def order_stats(read: ReadDep) -> dict[str, Any]:
        async with read.pool.connection() as conn:
            figures = await order_figures(conn, read.schema)
        return {**figures, "timestamp": datetime.now(UTC).isoformat()}

    router.add_api_websocket_route("/", _root_order_stream)
    return router


async def _root_order_stream(websocket: WebSocket, live: LiveDep) -> None:
    """`WS /?orderId=ID[&afterSeq=N]`: exactly `WS /api/orders/{ID}/stream`."""
    order_id = websocket.query_params.get(ORDER_ID_PARAM)
    if order_id is None or canonical_order_id(order_id) is None:
        # Accept, then close with a reason: a refused handshake only tells the client 403
        # (the live streams do the same, see api.live.connection).
        await websocket.accept()
        if order_id is None:
            await websocket.close(BAD_REQUEST, f"{ORDER_ID_PARAM} is required")
        else:
            await websocket.close(NOT_FOUND, f"order {order_id[:60]!r} not found")
        return
    await order_stream(websocket, order_id, live)
