"""The HTTP edge's composition root: `create_app(settings)` wires routers to their resources.

Consumes one `Settings` (plus optional replacements for tests and later changes: another
market source, the read model's statuses, another command sender); produces a FastAPI app
whose lifespan opens the one command bus (an idempotent Kafka producer) before the first
request and closes it, flushing, after the last, and keeps the quote endpoint's market
current with a `MarketFollower` of the market topics. Nothing is opened at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from api import health, live, orders, quotes
from api.command_bus import CommandBus, CommandSender, idempotent_producer
from api.deps import Edge, MarketSource, OrderStatuses
from api.errors import install_error_handlers
from api.idempotency import RecentKeys
from api.legacy_routes import install_legacy_routes
from api.order_statuses import read_model_statuses
from api.read_model import read_model_router
from domain.market import Market
from domain.tokens import TokenRegistry
from infra.services import bootstrap_servers
from oee.settings import Settings
from schemas.codec import Codec
from streams.market_feed import MarketFollower
from streams.market_view import MarketView

OpenCommands = Callable[[], AbstractAsyncContextManager[CommandSender]]


def create_app(
    settings: Settings,
    *,
    open_commands: OpenCommands | None = None,
    market: MarketSource | None = None,
    statuses: OrderStatuses | None = None,
    registry: TokenRegistry | None = None,
    clock: Callable[[], datetime] | None = None,
    read_side: bool = True,
) -> FastAPI:
    """The API app. Defaults: the settings' Kafka, the market as the market topics say it is,
    order statuses from the read model (for cancels)."""
    tokens = registry or TokenRegistry.default()
    opener = open_commands or (lambda: _command_bus(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opener() as commands, _live_market(settings, market) as view, \
                _read_model_statuses(settings, statuses) as known:
            app.state.edge = Edge(
                commands=commands,
                registry=tokens,
                market=view,
                statuses=known,
                recent_keys=RecentKeys(),
                clock=clock or _utc_now,
            )
            try:
                yield
            finally:
                del app.state.edge

    app = FastAPI(
        title="Order execution engine",
        version="0.1.0",
        description="Event-sourced order execution for Solana DEX swaps, on Apache Kafka.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_legacy_routes(app, settings, read_side=read_side)  # first: see api.legacy_routes
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(quotes.router)
    if read_side:  # queries, metrics and live streams: they need PostgreSQL and Kafka
        app.include_router(live.live_router(settings))
        app.include_router(read_model_router(settings))
    return app


@asynccontextmanager
async def _live_market(
    settings: Settings, given: MarketSource | None
) -> AsyncIterator[MarketSource]:
    """`given` as is (a test's fixed market), else a view that follows the market topics."""
    if given is not None:
        yield given
        return
    view = MarketView(Market.default(settings.market_seed))
    async with MarketFollower(settings, view, client_id="oee-api-market"):
        yield view


@asynccontextmanager
async def _read_model_statuses(
    settings: Settings, given: OrderStatuses | None
) -> AsyncIterator[OrderStatuses]:
    """`given` as is (a test's), else the read model's `orders` table (cancel answers 409)."""
    if given is not None:
        yield given
        return
    async with read_model_statuses(settings) as statuses:
        yield statuses


def _command_bus(settings: Settings) -> CommandBus:
    producer = idempotent_producer(bootstrap_servers(settings))
    return CommandBus(producer, settings.topics.commands, Codec.load())


def _utc_now() -> datetime:
    return datetime.now(UTC)
