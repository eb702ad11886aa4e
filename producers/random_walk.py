"""The random feed's market: a seeded walk with now and then a listing or a liquidity move.

Consumes a `Walk` (the market so far), a seeded `random.Random`, the time and event ids, all
passed in (nothing here reads a clock or the OS's randomness, so one seed replays one walk);
produces the next `Walk` and the events that publish it: a `PoolSnapshot` of every pool each
step, sometimes a `PoolCreated` (a new token listed against SOL or USDC, shallow as fresh
listings are) and sometimes a `LiquidityChanged` (LPs adding or withdrawing), which is what
sniper orders wait for. How a pool drifts (`repriced`, `decayed`), what it is worth
(`value_in_y`) and how LPs scale it (`scaled`) is its venue's business (`domain.pools.Pool`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal, localcontext
from typing import Final

from domain.market import Market
from domain.market_events import (
    LiquidityChanged,
    MarketEvent,
    PoolCreated,
    pool_state,
    snapshot_of,
)
from domain.orders.signatures import b58encode
from domain.pools import Pool
from domain.tokens import SOL, USDC, Token, to_human
from domain.venues.raydium import RaydiumPool

MAX_LISTINGS: Final = 50  # a long run must not grow the market (and every snapshot) forever
_NAMES: Final = ("WIF", "POPCAT", "MEW", "BOME", "SLERF", "MYRO", "PNUT", "GOAT", "FWOG", "MOODENG")
_MOVE_BPS: Final = 5_000  # a deposit adds up to 50%; a withdrawal undoes up to that much
# Depth wanders inside this band, so that a run of days never overflows a reserve.
_FLOOR_USD, _CEILING_USD = Decimal(1_000), Decimal(100_000_000)
_CENTS: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class WalkConfig:
    volatility_bps: int  # the most a token's reference price moves per step
    listing_rate: float  # chance per step of a PoolCreated
    liquidity_rate: float  # chance per step of a LiquidityChanged


@dataclass(frozen=True, slots=True)
class Walk:
    """Where the walk is: its market and how many tokens it has listed."""

    market: Market
    listings: int = 0

    @classmethod
    def resumed(cls, market: Market) -> Walk:
        """The walk a restarted feed continues: `market` as Kafka holds it, its references
        read back from its pools, its listings counted (pools of unpriced tokens)."""
        resumed = market.with_references_from_pools()
        listings = sum(1 for pool in resumed.pools if _is_listing(pool, resumed))
        return cls(resumed, min(listings, MAX_LISTINGS))

    def rebased(self, market: Market) -> Walk:
        """This walk on the pools `market` holds now (a confirmed swap's impact included);
        its own pools the market has not heard of yet (a listing in flight) are kept."""
        pools = {pool.key: pool for pool in self.market.pools}
        pools.update((pool.key, pool) for pool in market.pools)
        return Walk(Market(tuple(pools.values()), self.market.reference_usd), self.listings)

    def step(self, rng: random.Random, config: WalkConfig, occurred_at: datetime,
             new_id: Callable[[], str]) -> tuple[Walk, tuple[MarketEvent, ...]]:
        """One step: drift, maybe list a token, maybe move liquidity, snapshot every pool."""
        market = self.market.drift(rng, config.volatility_bps)
        events: list[MarketEvent] = []
        listings = self.listings
        if listings < MAX_LISTINGS and rng.random() < config.listing_rate:
            listings += 1
            pool = _listing(market, rng, listings)
            market = market.with_pool(pool)
            events.append(PoolCreated(
                event_id=new_id(), occurred_at=occurred_at, venue=pool.venue,
                token_x=pool.token_x, token_y=pool.token_y, state=pool_state(pool),
                liquidity_usd=liquidity_usd(pool, market)))
        if rng.random() < config.liquidity_rate:
            before = _pick_for_liquidity(market, rng)
            previous_usd = liquidity_usd(before, market)
            after = before.scaled(_move_bps(rng, previous_usd))
            market = market.with_pool(after)
            events.append(LiquidityChanged(
                event_id=new_id(), occurred_at=occurred_at, venue=after.venue,
                token_x=after.token_x, token_y=after.token_y, state=pool_state(after),
                liquidity_usd=liquidity_usd(after, market), previous_liquidity_usd=previous_usd))
        events.extend(snapshot_of(pool, new_id(), occurred_at) for pool in market.pools)
        return Walk(market, listings), tuple(events)


def _is_listing(pool: Pool, market: Market) -> bool:
    """A pool the walk listed: a token without a reference price against SOL or USDC."""
    return market.reference_price(pool.token_x.mint) is None and pool.token_y in (SOL, USDC)


def liquidity_usd(pool: Pool, market: Market) -> Decimal:
    """The pool's value in USD, to the cent: valued in its y token, then at a reference price
    (y's, or x's through the pool's price); zero if the market prices neither token."""
    value_y = pool.value_in_y()
    usd_y, usd_x = market.reference_price(pool.token_y.mint), market.reference_price(
        pool.token_x.mint)
    with localcontext(Context(prec=34)):  # the caller's context is restored on exit
        human_y = to_human(value_y, pool.token_y)
        if usd_y is not None:
            usd = human_y * usd_y
        elif usd_x is not None:
            usd = human_y / pool.spot_price(pool.token_x.mint) * usd_x
        else:
            usd = Decimal(0)
        return usd.quantize(_CENTS)


def _move_bps(rng: random.Random, depth_usd: Decimal) -> int:
    """A deposit of up to 50%, or a withdrawal by the inverse factor: equally likely moves
    cancel out (no drift in depth), and a pool outside the band is steered back into it."""
    step = rng.randint(1, _MOVE_BPS)
    deposit = depth_usd < _FLOOR_USD or (depth_usd <= _CEILING_USD and rng.randrange(2) == 1)
    return step if deposit else -(step * 10_000 // (10_000 + step))


def _listing(market: Market, rng: random.Random, number: int) -> RaydiumPool:
    """A fresh token on Raydium against SOL or USDC, a few thousand USD deep."""
    quote = SOL if rng.randrange(2) else USDC
    token = Token(f"{rng.choice(_NAMES)}{number}", b58encode(rng.randbytes(32)),
                  rng.choice((6, 9)))
    token_usd = Decimal(rng.randint(1, 9_999)).scaleb(-rng.randint(4, 8))
    depth_usd = Decimal(rng.randint(2_000, 60_000))
    quote_usd = market.reference_price(quote.mint) or Decimal(1)
    with localcontext(Context(prec=34)):
        reserve_x = int(depth_usd / 2 / token_usd * 10**token.decimals)
        return RaydiumPool.from_price(token, quote, reserve_x, token_usd / quote_usd)


def _pick_for_liquidity(market: Market, rng: random.Random) -> Pool:
    """Half the time a fresh listing (if any): that is where liquidity moves most."""
    fresh = [pool for pool in market.pools
             if market.reference_price(pool.token_x.mint) is None]
    return rng.choice(fresh if fresh and rng.randrange(2) else market.pools)
