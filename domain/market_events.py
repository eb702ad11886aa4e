"""Market data as facts: what the price feed publishes and how a market snapshot absorbs them.

Consumes values only: the feed builds these events from its pools; the follower decodes them
from `market.prices` and `market.pools`. Produces new `Market` snapshots: `fold(market,
events)` applies a batch and says which pairs it changed.

- `PoolSnapshot` (market.prices): a pool's complete state; applying it replaces the pool.
- `PriceTick` (market.prices): "this pair now trades at `price`" (tokenOut per 1 tokenIn,
  human units, as limit prices are written); applied with `Pool.repriced`, so depth is kept.
- `PoolCreated` (market.pools): a new listing, its complete state and its liquidity in USD.
- `LiquidityChanged` (market.pools): LPs added or withdrew; the new state and liquidity in USD.

A pool's state is its venue's wire state (`domain.venues.PoolState`): each venue module maps
its pools to and from it, and the registry says which venue reads which record.

Every fact about a pool carries all of it, tokens included: a process that starts in the
middle of the stream rebuilds a pool from any one record, and learns a new token from the
record that lists it. Every record is keyed by its pair (`Pair.key`), not by venue, so the
facts about one pair (every venue's pool, and ticks that move all of them) stay in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from typing import Final, TypeAlias

from domain.market import Market
from domain.pools import Pool, PoolKey
from domain.tokens import Token
from domain.venues import VENUES, PoolState

# Room for 1/price of any price the feed writes (18 significant digits) without loss.
_INVERSE = Context(prec=34)


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """Two mints in canonical (sorted) order: the key of every market record."""

    mint_a: str
    mint_b: str

    @classmethod
    def of(cls, mint_1: str, mint_2: str) -> Pair:
        first, second = sorted((mint_1, mint_2))
        return cls(first, second)

    @property
    def key(self) -> bytes:
        return f"{self.mint_a}/{self.mint_b}".encode()

    def __contains__(self, mint: object) -> bool:
        return mint == self.mint_a or mint == self.mint_b

    def __str__(self) -> str:
        return f"{self.mint_a}/{self.mint_b}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseMarketEvent:
    """Fields every market event carries (the envelope of `schemas/market_event.avsc`)."""

    event_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class _PoolFact(BaseMarketEvent):
    """A fact that carries a whole pool (not a message type of its own)."""

    venue: str
    token_x: Token
    token_y: Token
    state: PoolState

    @property
    def pair(self) -> Pair:
        return Pair.of(self.token_x.mint, self.token_y.mint)

    def pool(self) -> Pool:
        """The pool this fact describes; ValueError if the state does not make one."""
        return pool_from(self.venue, self.token_x, self.token_y, self.state)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSnapshot(_PoolFact):
    """A pool's complete current state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolCreated(_PoolFact):
    """A new pool was listed (for a sniper: the moment a token becomes tradable)."""

    liquidity_usd: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidityChanged(_PoolFact):
    """Liquidity was added to or withdrawn from a pool (for a sniper: a threshold to cross)."""

    liquidity_usd: Decimal
    previous_liquidity_usd: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTick(BaseMarketEvent):
    """`base_mint` now fetches `price` of `quote_mint` (human units) on `venue`, or on every
    venue with a pool of the pair when `venue` is None."""

    venue: str | None
    base_mint: str
    quote_mint: str
    price: Decimal

    @property
    def pair(self) -> Pair:
        return Pair.of(self.base_mint, self.quote_mint)


MarketEvent: TypeAlias = PoolSnapshot | PriceTick | PoolCreated | LiquidityChanged
MARKET_EVENT_TYPES: Final = (PoolSnapshot, PriceTick, PoolCreated, LiquidityChanged)
PRICE_EVENTS: Final = (PoolSnapshot, PriceTick)  # market.prices
POOL_EVENTS: Final = (PoolCreated, LiquidityChanged)  # market.pools


def pool_state(pool: Pool) -> PoolState:
    """The wire state of a domain pool (its venue says which branch of the union)."""
    return pool.wire_state()


def pool_from(venue: str, token_x: Token, token_y: Token, state: PoolState) -> Pool:
    """The domain pool of a wire state; ValueError if the venue is unknown, does not run
    that curve, or the state is not a valid pool."""
    return VENUES[venue].pool_from(token_x, token_y, state)


def snapshot_of(pool: Pool, event_id: str, occurred_at: datetime) -> PoolSnapshot:
    return PoolSnapshot(event_id=event_id, occurred_at=occurred_at, venue=pool.venue,
                        token_x=pool.token_x, token_y=pool.token_y, state=pool_state(pool))


# --- applying events to a market ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketChange:
    """What one batch did to one pair: its applied events, in order, and the market after."""

    pair: Pair
    events: tuple[MarketEvent, ...]
    market: Market


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event the market could not absorb (no such pool, an impossible state or price)."""

    event: MarketEvent
    reason: str


@dataclass(frozen=True, slots=True)
class Folded:
    market: Market
    changes: tuple[MarketChange, ...]
    rejected: tuple[Rejected, ...]


def fold(market: Market, events: Iterable[MarketEvent]) -> Folded:
    """Apply `events` in order; one new `Market` per batch, however many events it holds.

    Building a `Market` indexes every pool, so a batch is folded into a plain dict of pools
    and the snapshot is built once at the end: thousands of ticks per second stay cheap.
    """
    pools: dict[PoolKey, Pool] = {pool.key: pool for pool in market.pools}
    applied: dict[Pair, list[MarketEvent]] = {}
    rejected: list[Rejected] = []
    for event in events:
        try:
            _apply(pools, event)
        except (ValueError, ArithmeticError) as error:
            rejected.append(Rejected(event, str(error)))
            continue
        applied.setdefault(event.pair, []).append(event)
    if not applied:
        return Folded(market, (), tuple(rejected))
    after = Market(tuple(pools.values()), market.reference_usd)
    changes = tuple(MarketChange(pair, tuple(done), after) for pair, done in applied.items())
    return Folded(after, changes, tuple(rejected))


def _apply(pools: dict[PoolKey, Pool], event: MarketEvent) -> None:
    if isinstance(event, PriceTick):
        _reprice(pools, event)
    else:
        pool = event.pool()
        pools[pool.key] = pool


def _reprice(pools: dict[PoolKey, Pool], tick: PriceTick) -> None:
    if tick.base_mint == tick.quote_mint:
        raise ValueError("a price tick needs two different mints")
    if not tick.price.is_finite() or tick.price <= 0:
        raise ValueError(f"price must be a positive finite decimal, got {tick.price}")
    venues = (tick.venue,) if tick.venue is not None else VENUES.names
    keys = [PoolKey.of(venue, tick.base_mint, tick.quote_mint) for venue in venues]
    found = [pools[key] for key in keys if key in pools]
    if not found:
        raise ValueError(f"no {tick.venue or 'pool on any venue'} for {tick.pair}")
    for pool in found:
        # `repriced` takes token_y per token_x; the tick says quote per base.
        per_x = tick.price if pool.token_x.mint == tick.base_mint else _INVERSE.divide(
            Decimal(1), tick.price)
        repriced = pool.repriced(per_x)
        pools[repriced.key] = repriced
