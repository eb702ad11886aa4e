"""The market: an immutable snapshot of every venue's pools, and how it moves.

Consumes pools of registered venues (`domain.venues`; the default market is every venue's
seed pools) and optional USD reference prices per token, the role an oracle such as Pyth
plays; produces new snapshots: `with_pool` for a price-feed or pool event, `drift` for a
seeded random walk. Routing reads it through `pool`, `neighbors` and `token`.

Drift model (why it looks the way it does): tokens move, each venue's pools follow them on
their own, and arbitrage keeps the venues together. Each step moves the reference price of
every volatile token by a random number of bps (stablecoins stay pegged, liquid staking tokens
follow SOL). Each pool then keeps most of its previous deviation from its tokens' reference
ratio (order flow on one venue is persistent) plus an independent shock of its own, so the
venues' prices differ and which one pays more changes over time. Last, arbitrage: where two
venues quote one pair further apart than the round trip's fees, traders close the gap down
to those fees (a gap inside them is not worth trading). So the venues never drift apart, and
a venue with a higher fee still wins whenever its price is better by more than the fee gap.
Pairs whose reference ratio cannot move (two stablecoins, a staking token and its base) are
quiet: their shocks are a tenth of the others'. Depth is preserved: each venue's `repriced`
keeps it (constant-product pools keep k, DLMM pools keep their per-bin liquidity).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from types import MappingProxyType
from typing import Final

from domain.pools import Pool, PoolKey
from domain.tokens import BONK, JUP, MSOL, RAY, SOL, USDC, USDT, Token, UnknownToken
from domain.venues import VENUES

# Reference prices in USD per token for the default market (early-2025 orders of magnitude).
DEFAULT_REFERENCE_USD: Mapping[str, Decimal] = MappingProxyType({
    SOL.mint: Decimal("185"),
    USDC.mint: Decimal("1"),
    USDT.mint: Decimal("1"),
    BONK.mint: Decimal("0.000022"),
    JUP.mint: Decimal("0.85"),
    RAY.mint: Decimal("2.50"),
    MSOL.mint: Decimal("236.80"),  # 1.28 SOL: mSOL accrues staking yield
})
# Stablecoins do not random-walk; a liquid staking token moves with the token it stakes.
PEGGED: frozenset[str] = frozenset({USDC.mint, USDT.mint})
TRACKS: Mapping[str, str] = MappingProxyType({MSOL.mint: SOL.mint})


@dataclass(frozen=True, slots=True)
class Market:
    """Every pool, at most one per (venue, pair), plus USD reference prices per mint."""

    pools: tuple[Pool, ...]
    reference_usd: tuple[tuple[str, Decimal], ...] = ()
    _by_key: Mapping[PoolKey, Pool] = field(init=False, repr=False, compare=False)
    # (venue, mint, mint) in both orders: routing looks pools up per hop, without sorting keys.
    _by_route: Mapping[tuple[str, str, str], Pool] = field(init=False, repr=False, compare=False)
    _neighbors: Mapping[tuple[str, str], frozenset[str]] = field(
        init=False, repr=False, compare=False
    )
    _tokens: Mapping[str, Token] = field(init=False, repr=False, compare=False)
    _references: Mapping[str, Decimal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key = {pool.key: pool for pool in self.pools}
        if len(by_key) != len(self.pools):
            raise ValueError("a market holds at most one pool per venue and pair")
        strangers = sorted({pool.venue for pool in self.pools if pool.venue not in VENUES})
        if strangers:
            raise ValueError(f"pools of unregistered venues: {strangers}")
        neighbors: dict[tuple[str, str], set[str]] = {}
        tokens: dict[str, Token] = {}
        by_route: dict[tuple[str, str, str], Pool] = {}
        for pool in self.pools:
            x, y = pool.token_x, pool.token_y
            by_route[pool.venue, x.mint, y.mint] = by_route[pool.venue, y.mint, x.mint] = pool
            neighbors.setdefault((pool.venue, x.mint), set()).add(y.mint)
            neighbors.setdefault((pool.venue, y.mint), set()).add(x.mint)
            tokens[x.mint], tokens[y.mint] = x, y
        # Sorted pools make equal markets compare equal and every walk over them deterministic.
        object.__setattr__(self, "pools", tuple(by_key[key] for key in sorted(by_key)))
        object.__setattr__(self, "reference_usd", tuple(sorted(self.reference_usd)))
        object.__setattr__(self, "_by_key", MappingProxyType(by_key))
        object.__setattr__(self, "_by_route", MappingProxyType(by_route))
        object.__setattr__(self, "_neighbors", MappingProxyType(
            {key: frozenset(mints) for key, mints in neighbors.items()}
        ))
        object.__setattr__(self, "_tokens", MappingProxyType(tokens))
        object.__setattr__(self, "_references", MappingProxyType(dict(self.reference_usd)))

    @classmethod
    def of(cls, pools: Iterable[Pool],
           reference_usd: Mapping[str, Decimal] | None = None) -> Market:
        return cls(tuple(pools), tuple((reference_usd or {}).items()))

    @classmethod
    def default(cls, seed: int | None = None) -> Market:
        """The documented seed market; with a seed, one drift step away from it (10 bps)."""
        market = cls.of(_default_pools(), DEFAULT_REFERENCE_USD)
        return market if seed is None else market.drift(random.Random(seed), 10)

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(sorted({pool.venue for pool in self.pools}))

    @property
    def tokens(self) -> tuple[Token, ...]:
        """Every token some pool of this market trades."""
        return tuple(self._tokens.values())

    def pool(self, venue: str, mint_a: str, mint_b: str) -> Pool | None:
        return self._by_route.get((venue, mint_a, mint_b))

    def pools_between(self, mint_a: str, mint_b: str) -> tuple[Pool, ...]:
        found = (self.pool(venue, mint_a, mint_b) for venue in self.venues)
        return tuple(pool for pool in found if pool is not None)

    def neighbors(self, venue: str, mint: str) -> frozenset[str]:
        """Mints that `venue` can swap `mint` into directly."""
        return self._neighbors.get((venue, mint), frozenset())

    def token(self, mint: str) -> Token:
        token = self._tokens.get(mint)
        if token is None:
            raise UnknownToken(mint)
        return token

    def reference_price(self, mint: str) -> Decimal | None:
        """USD per token, if the market tracks one for `mint`."""
        return self._references.get(mint)

    def with_references_from_pools(self) -> Market:
        """The market with each reference price read back from its pools (pegged ones kept).

        What a restarted feed resumes from: the pools published to Kafka say where the prices
        went; the seed's references would pull every pool back to the seed. A token is priced
        through its pools with already-priced tokens (the median of them), stablecoins first,
        so SOL comes from SOL/USDC and SOL/USDT, then mSOL from mSOL/SOL; a token no pool
        connects keeps its reference.
        """
        priced = {mint: usd for mint, usd in self._references.items() if mint in PEGGED}
        pending = sorted(mint for mint in self._references if mint not in priced)
        with localcontext(Context(prec=34)):
            while pending:
                found = {mint: usd for mint in pending
                         if (usd := self._priced_through_pools(mint, priced)) is not None}
                if not found:
                    break
                priced.update(found)
                pending = [mint for mint in pending if mint not in found]
        rounding = Context(prec=18)
        references = {mint: rounding.plus(priced.get(mint, usd))
                      for mint, usd in self._references.items()}
        return Market(self.pools, tuple(references.items()))

    def _priced_through_pools(self, mint: str, priced: Mapping[str, Decimal]) -> Decimal | None:
        quotes = sorted(pool.spot_price(mint) * priced[other] for pool in self.pools
                        if mint in (pool.token_x.mint, pool.token_y.mint)
                        and (other := _other_mint(pool, mint)) in priced)
        if not quotes:
            return None
        middle = len(quotes) // 2
        return quotes[middle] if len(quotes) % 2 else (quotes[middle - 1] + quotes[middle]) / 2

    def moved_since(self, earlier: Market) -> tuple[Pool, ...]:
        """The pools of this market that `earlier` does not hold as they are now."""
        return tuple(pool for pool in self.pools if earlier._by_key.get(pool.key) != pool)

    def with_pool(self, pool: Pool) -> Market:
        """The market with `pool` added, or replacing the pool of the same venue and pair."""
        others = (p for p in self.pools if p.key != pool.key)
        return Market((*others, pool), self.reference_usd)

    def drift(self, rng: random.Random, volatility_bps: int) -> Market:
        """One random-walk step: references move up to `volatility_bps`, pools follow them."""
        if volatility_bps < 0:
            raise ValueError("volatility_bps must not be negative")
        with localcontext(Context(prec=34)):  # the caller's context is restored on exit
            new = _moved_references(self._references, rng, volatility_bps)
            targets = {pool.key: _own_target(pool, self._references, new, rng, volatility_bps)
                       for pool in self.pools}
            _arbitrage(self.pools, targets)
            pools = tuple(pool.repriced(targets[pool.key]).decayed() for pool in self.pools)
        return Market(pools, tuple(new.items()))


def _moved_references(
    old: Mapping[str, Decimal], rng: random.Random, volatility_bps: int
) -> dict[str, Decimal]:
    # randint draws integers: no float ever enters the walk. Sorted order keeps it reproducible.
    steps = {mint: _step(rng, volatility_bps) for mint in sorted(old) if mint not in PEGGED}
    # 18 significant digits: plenty for a price, and the values stay short in events and logs.
    rounding = Context(prec=18)
    return {
        mint: rounding.plus(_grow(usd, steps.get(TRACKS.get(mint, mint), 0)))
        for mint, usd in old.items()
    }


# How much of a pool's deviation from the reference ratio survives a step: flow on one venue
# is persistent, so a venue stays cheaper (or dearer) for a while rather than for one step.
_KEPT: Final = Decimal("0.95")
_QUIET: Final = 10  # a pair whose reference ratio cannot move gets a tenth of the shocks


def _own_target(pool: Pool, old: Mapping[str, Decimal], new: Mapping[str, Decimal],
                rng: random.Random, volatility_bps: int) -> Decimal:
    """Where this venue's flow alone takes `pool`: most of its deviation plus its own shock."""
    x, y = pool.token_x.mint, pool.token_y.mint
    spot = pool.spot_price(x)
    if x in old and y in old:
        deviation_bps = (spot / (old[x] / old[y]) - 1) * 10_000
        quiet = _ratio_is_fixed(x, y)
        kept_bps = deviation_bps * _KEPT + _step(
            rng, volatility_bps // _QUIET if quiet else volatility_bps)
        return new[x] / new[y] * (1 + kept_bps / 10_000)
    # A pool of tokens nobody prices (a fresh listing): it just wanders.
    return _grow(spot, _step(rng, volatility_bps))


def _ratio_is_fixed(x: str, y: str) -> bool:
    """Two pegged tokens, or a staking token and the token it tracks."""
    return (x in PEGGED and y in PEGGED) or TRACKS.get(x) == y or TRACKS.get(y) == x


def _arbitrage(pools: Iterable[Pool], targets: dict[PoolKey, Decimal]) -> None:
    """Close every gap between two venues' prices of a pair down to their fees, in place.

    Both pools move towards each other by half the excess, in price ratio: arbitrageurs buy
    on the cheap venue and sell on the dear one until the trade no longer pays.
    """
    by_pair: dict[tuple[str, str], list[Pool]] = {}
    for pool in pools:
        by_pair.setdefault(_pair(pool), []).append(pool)
    for pair, venues in by_pair.items():
        for _ in range(len(venues) - 1):  # each pass clamps the widest gap; n-1 passes suffice
            if not _close_widest_gap(pair[0], venues, targets):
                break


def _close_widest_gap(base: str, venues: list[Pool], targets: dict[PoolKey, Decimal]) -> bool:
    prices = {pool.key: _price_of(pool, base, targets[pool.key]) for pool in venues}
    dear = max(venues, key=lambda pool: prices[pool.key])
    cheap = min(venues, key=lambda pool: prices[pool.key])
    band = 1 + _lowest_fee(dear) + _lowest_fee(cheap)
    gap = prices[dear.key] / prices[cheap.key]
    if gap <= band:
        return False
    half_excess = (gap / band).sqrt()  # each side moves by the square root of the excess
    for pool, factor in ((dear, 1 / half_excess), (cheap, half_excess)):
        targets[pool.key] = _price_of(pool, base, prices[pool.key] * factor)
    return True


def _other_mint(pool: Pool, mint: str) -> str:
    return pool.token_y.mint if pool.token_x.mint == mint else pool.token_x.mint


def _lowest_fee(pool: Pool) -> Decimal:
    rate = pool.fee_bounds().lowest
    return Decimal(rate.numerator) / rate.denominator


def _pair(pool: Pool) -> tuple[str, str]:
    first, second = sorted((pool.token_x.mint, pool.token_y.mint))
    return first, second


def _price_of(pool: Pool, base: str, price: Decimal) -> Decimal:
    """Convert between the pool's own price (y per x) and the price of `base`, both ways."""
    return price if pool.token_x.mint == base else 1 / price


def _step(rng: random.Random, bound_bps: int) -> int:
    return rng.randint(-bound_bps, bound_bps) if bound_bps > 0 else 0


def _grow(value: Decimal, bps: int) -> Decimal:
    return value * (10_000 + bps) / 10_000


def _default_pools() -> tuple[Pool, ...]:
    """Every registered venue's seed pools. Raydium: deep constant-product pools. Meteora:
    concentrated DLMM bins with lower fees, so it pays more for small orders while Raydium
    absorbs large ones better.

    BONK/JUP, BONK/USDT, mSOL/USDC and RAY/SOL have no direct pool: routing goes multi-hop.
    """
    return tuple(pool for venue in VENUES for pool in venue.seed_pools(DEFAULT_REFERENCE_USD))
