"""The HTTP edge as a FastAPI app: `create_app(open_edge)` mounts the routers and ONE lifespan.

Consumes an opener of the process's resources (an async context manager yielding an
`api.deps.Edge`); the API process's composition root, `oee.api_bootstrap`, builds it from
the settings and hands it here. Produces the app: the lifespan enters the opener before the
first request, stores the `Edge` on `app.state` (every router reads it from there through
`api.deps`) and leaves it after the last request. Nothing is opened at import time, and no
router captures settings or opens resources of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from api import (
    health, http_metrics, market_prices, metrics, orders, projections_api, queries, quotes,
)
from api.auth.guard import needs
from api.auth.keys import Scope
from api.deps import Edge
from api.errors import install_error_handlers
from api.legacy_routes import install_legacy_routes
from api.live import router as live
from api.query_params import only_declared_query
from telemetry.tracing import NO_TRACING, Tracer

OpenEdge = Callable[[], AbstractAsyncContextManager[Edge]]


def create_app(open_edge: OpenEdge, *, read_side: bool = True,
               tracer: Tracer = NO_TRACING) -> FastAPI:
    """The API app. `read_side=False` leaves out the routes that need the read model and the
    live feed (queries, projections, metrics, readiness, WebSockets, dashboard)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_edge() as opened:
            app.state.edge = opened
            try:
                yield
            finally:
                del app.state.edge

    app = FastAPI(
        title="Order execution engine",
        version="0.1.0",
        description="Event-sourced order execution for Solana DEX swaps, on Apache Kafka.",
        lifespan=lifespan,
        dependencies=[Depends(only_declared_query)],
    )
    install_error_handlers(app)
    app.state.metrics_registry = CollectorRegistry()  # this process's figures only
    app.add_middleware(http_metrics.Instrumented,
                       metrics=http_metrics.ApiMetrics(app.state.metrics_registry),
                       tracer=tracer)
    app.include_router(http_metrics.router)
    install_legacy_routes(app, read_side=read_side)  # first: see api.legacy_routes
    app.include_router(health.router)
    app.include_router(orders.router)
    # Routes that need a key declare it (`api.auth.guard`); these routers need one throughout.
    app.include_router(quotes.router, dependencies=[Depends(needs(Scope.READ))])
    app.include_router(market_prices.router, dependencies=[Depends(needs(Scope.READ))])
    if read_side:
        app.include_router(queries.router)
        app.include_router(projections_api.router, dependencies=[Depends(needs(Scope.ADMIN))])
        app.include_router(metrics.router)
        app.include_router(live.router)
    return app
