"""The HTTP edge's composition root: `create_app(settings)` wires routers to their resources.

Consumes one `Settings` (plus optional replacements for tests and later changes: another
market source, the read model's statuses, another command sender); produces a FastAPI app
whose lifespan opens the one command bus (an idempotent Kafka producer) before the first
request and closes it, flushing, after the last. Nothing is opened at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from api import health, orders, quotes
from api.command_bus import CommandBus, CommandSender, idempotent_producer
from api.deps import Edge, MarketSource, OrderStatuses, UnknownStatuses
from api.errors import install_error_handlers
from api.idempotency import RecentKeys
from domain.market import Market
from domain.tokens import TokenRegistry
from infra.services import bootstrap_servers
from oee.settings import Settings
from schemas.codec import Codec
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
) -> FastAPI:
    """The API app. Defaults: the settings' Kafka, the seeded default market, no read model."""
    tokens = registry or TokenRegistry.default()
    # A fixed snapshot for now; a later change feeds this view from market.* topics.
    view = market or MarketView(Market.default(settings.market_seed))
    opener = open_commands or (lambda: _command_bus(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opener() as commands:
            app.state.edge = Edge(
                commands=commands,
                registry=tokens,
                market=view,
                statuses=statuses or UnknownStatuses(),
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
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(quotes.router)
    return app


def _command_bus(settings: Settings) -> CommandBus:
    producer = idempotent_producer(bootstrap_servers(settings))
    return CommandBus(producer, settings.topics.commands, Codec.load())


def _utc_now() -> datetime:
    return datetime.now(UTC)
