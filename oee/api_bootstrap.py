"""The API process's composition root: every resource built once, then handed to the app.

Consumes the `Settings` (and, for tests, replacements of any resource); produces the FastAPI
app of `oee api` whose one lifespan opens, in this order, and closes in reverse:

- the codec (loaded once) and the token registry;
- the authenticator (`api.auth`): the server secret, the key lookups on the read model's
  pool (or a replacement), the per-key rate limiter and WebSocket slots;
- the command bus: one idempotent Kafka producer of `orders.commands`;
- the market: a `MarketView` kept current by one `MarketFollower` of the market topics;
- with the read side: ONE PostgreSQL pool on the read model, shared by the queries, the
  cancel route's order statuses, the projections status, the metrics and readiness, and the
  live streams' catch-up; one `KafkaOffsets`; the rebuild runner; the live fan-out (one
  consumer of `orders.events`) and the raw-topic catalog.

The API never imports the projector's package: the projections-side adapters (lag figures,
the background rebuild) are built here and handed over as the `api.deps` ports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from api.auth.guard import Authenticator, KeyLookup
from api.auth.limits import RateLimiter, SocketSlots
from api.auth.secret import server_secret
from api.auth.store import PoolKeys
from api.breaker import Breaker
from api.command_bus import CommandBus, CommandSender, idempotent_producer
from api.deps import Edge, MarketSource, OrderStatuses, ReadSide, UnknownOrders, UnknownStatuses
from api.idempotency import RecentKeys
from api.live.config import LiveConfig
from api.live.edge import LiveEdge
from api.live.fanout import Fanout
from api.live.history import OrderHistory
from api.live.topic_catalog import TopicCatalog
from api.server import serve
from api.order_records import ReadModelOrders
from api.order_statuses import ReadModelStatuses
from domain.market import Market
from domain.tokens import TokenRegistry
from api.chain_check import KafkaChains
from infra.fetch_pacing import FetchPacing
from infra.pool_checks import IdleCheck
from infra.schema_registry import registered_codec
from infra.services import bootstrap_servers, database_url
from marketdata.follower import MarketFollower
from marketdata.view import MarketView
from oee.settings import AuthMode, Settings
from projections.kafka_offsets import KafkaOffsets
from projections.monitor import ProjectionMonitor, RebuildRunner
from projections.rebuild import RebuildOptions
from schemas.codec import Codec
from telemetry.logs import configure
from telemetry.tracing import tracer_of

OpenCommands = Callable[[], AbstractAsyncContextManager[CommandSender]]

POOL_SIZE: Final = 16  # every read route, the cancel's status check and the streams' catch-up
DB_WAIT_S: Final = 2.0  # longest a request waits for a connection before its 503
POOL_CHECK_IDLE_S: Final = 1.0  # a pooled connection idle longer is checked before use
MAX_PROJECTION_LAG: Final = 10_000  # events the projector may lag while /ready says ready


@dataclass(frozen=True, slots=True, kw_only=True)
class Replacements:
    """Resources a test (or another deployment) provides instead of the defaults."""

    open_commands: OpenCommands | None = None  # default: the Kafka command bus
    market: MarketSource | None = None  # default: the market topics, followed
    statuses: OrderStatuses | None = None  # default: the read model's (none without it)
    registry: TokenRegistry | None = None  # default: TokenRegistry.default()
    clock: Callable[[], datetime] | None = None  # default: UTC now
    keys: KeyLookup | None = None  # default: the read model's api_keys (needs the read side)
    live: LiveConfig | None = None
    rebuild: RebuildOptions | None = None
    max_projection_lag: int = MAX_PROJECTION_LAG
    db_wait_s: float = DB_WAIT_S


def bootstrap(
    settings: Settings, replacements: Replacements | None = None, *, read_side: bool = True
) -> FastAPI:
    """The API app of `settings`. `read_side=False`: the command edge alone (no PostgreSQL,
    no live feed), for tests of the command routes."""
    chosen = replacements or Replacements()
    return create_app(lambda: open_edge(settings, chosen, read_side=read_side),
                      read_side=read_side, tracer=tracer_of(settings.otel_enabled, "api"))


@asynccontextmanager
async def open_edge(
    settings: Settings, chosen: Replacements, *, read_side: bool
) -> AsyncIterator[Edge]:
    """Open every resource of the process; close them all, in reverse, on exit."""
    # The registry is asked only when something of ours writes or reads Kafka records.
    own_kafka = chosen.open_commands is None or chosen.market is None or read_side
    codec = await asyncio.to_thread(registered_codec, settings) if own_kafka else Codec.load()
    registry = chosen.registry or TokenRegistry.default()
    async with AsyncExitStack() as stack:
        opener = chosen.open_commands or (lambda: _command_bus(settings, codec))
        commands = await stack.enter_async_context(opener())
        market = chosen.market
        if market is None:
            market = await stack.enter_async_context(
                _followed_market(settings, codec, registry))
        if not read_side:
            yield Edge(commands=commands, registry=registry, market=market,
                       statuses=chosen.statuses or UnknownStatuses(), recent_keys=RecentKeys(),
                       clock=chosen.clock or _utc_now, auth=_authenticator(settings, chosen.keys),
                       orders=UnknownOrders(), accept_budget=_accept_budget(settings),
                       min_interval_s=settings.parent_min_interval_s)
            return
        pool = await stack.enter_async_context(_read_model_pool(settings, chosen.db_wait_s))
        auth = _authenticator(settings, chosen.keys or PoolKeys(pool, settings.db_schema))
        kafka = await stack.enter_async_context(KafkaOffsets(bootstrap_servers(settings)))
        rebuilds = RebuildRunner(settings, chosen.rebuild)
        stack.push_async_callback(rebuilds.stop)  # a rebuild cut short leaves the live model
        live = await stack.enter_async_context(
            _live_edge(settings, codec, pool, chosen.live or LiveConfig()))
        read = ReadSide(pool=pool, schema=settings.db_schema,
                        monitor=ProjectionMonitor(settings, pool, kafka), rebuilds=rebuilds,
                        max_projection_lag=chosen.max_projection_lag,
                        chains=KafkaChains(bootstrap_servers(settings), settings.topics.events,
                                           codec))
        statuses = chosen.statuses or ReadModelStatuses(pool, settings.db_schema)
        yield Edge(commands=commands, registry=registry, market=market, statuses=statuses,
                   recent_keys=RecentKeys(), clock=chosen.clock or _utc_now, auth=auth,
                   orders=ReadModelOrders(pool, settings.db_schema), read=read, live=live,
                   accept_budget=_accept_budget(settings),
                   min_interval_s=settings.parent_min_interval_s)


def _authenticator(settings: Settings, keys: KeyLookup | None) -> Authenticator:
    enabled = settings.auth_mode is AuthMode.ON
    if enabled and keys is None:
        raise RuntimeError("AUTH_MODE=on needs the read model's api_keys table: an edge "
                           "without the read side takes AUTH_MODE=off or Replacements.keys")
    return Authenticator(
        enabled=enabled, secret=server_secret(settings) if enabled else b"",
        keys=keys or _NoKeys(), cache_s=settings.auth_key_cache_s,
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst,
                            time.monotonic),
        sockets=SocketSlots(settings.ws_max_per_key, settings.ws_max_per_process),
        clock=time.monotonic)


class _NoKeys:
    """The key lookup of AUTH_MODE=off: never asked."""

    async def find(self, key_id: str) -> None:
        return None


def _command_bus(settings: Settings, codec: Codec) -> CommandBus:
    """The bus waits for an acknowledgement as long as it can still tell 201 from 503 (the
    accept budget and a slack), and fails fast while Kafka is known down."""
    producer = idempotent_producer(bootstrap_servers(settings))
    wait_s = (settings.command_accept_budget_ms + settings.command_ack_slack_ms) / 1000
    breaker = Breaker(time.monotonic, stall_s=settings.command_stall_ms / 1000,
                      cooldown_s=settings.command_breaker_cooldown_ms / 1000)
    return CommandBus(producer, settings.topics.commands, codec, delivery_timeout_s=wait_s,
                      breaker=breaker)


def _accept_budget(settings: Settings) -> timedelta:
    return timedelta(milliseconds=settings.command_accept_budget_ms)


@asynccontextmanager
async def _followed_market(settings: Settings, codec: Codec,
                           registry: TokenRegistry) -> AsyncIterator[MarketView]:
    """A view of the market topics, caught up before the first quote or order; the tokens
    its pools list (a feed's listings) become known to `registry` as they arrive."""
    view = MarketView(Market.default(settings.market_seed))
    follower = MarketFollower(settings, view, codec, client_id="oee-api-market",
                              pacing=FetchPacing.market_view(settings))
    follower.subscribe(lambda change: registry.learn(change.market.tokens))
    async with follower:
        registry.learn(view.current().tokens)
        yield view


@asynccontextmanager
async def _read_model_pool(
    settings: Settings, wait_s: float
) -> AsyncIterator[AsyncConnectionPool]:
    """The process's one pool on the read model.

    It connects in the background: a database that is down at boot fails requests (503) and
    `/ready`, not the start of the process. A connection idle for a while is checked as it is
    handed out, so the connections a database restart broke are replaced instead of failing
    requests (`infra.pool_checks`: not one that just came back, which costs a round trip).
    """
    idle = IdleCheck(POOL_CHECK_IDLE_S)
    pool = AsyncConnectionPool(
        database_url(settings), min_size=1, max_size=POOL_SIZE, open=False, timeout=wait_s,
        kwargs={"autocommit": True}, check=idle.check, reset=idle.reset,
        name="oee-api-read-model",
    )
    await pool.open(wait=False)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def _live_edge(
    settings: Settings, codec: Codec, pool: AsyncConnectionPool, config: LiveConfig
) -> AsyncIterator[LiveEdge]:
    bootstrap = bootstrap_servers(settings)
    # While no stream listens, the fan-out only fills its cache: it gathers like a view.
    async with Fanout.open(bootstrap, settings.topics.events, codec, config,
                           FetchPacing.of(settings),
                           FetchPacing.market_view(settings)) as fanout:
        yield LiveEdge.of(config, fanout, OrderHistory(pool, settings.db_schema),
                          TopicCatalog(settings, codec), bootstrap)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    """Serve the API of the environment's settings (`python -m api.server`)."""
    settings = Settings()
    configure(settings.log_level, settings.log_format, "api")
    serve(bootstrap(settings), settings)
