"""The market snapshot: its default pools, replacing pools, and the seeded drift."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import Market
from domain.pools import Pool
from domain.routing import best_route
from domain.tokens import BONK, JUP, MSOL, RAY, SOL, USDC, USDT, Token, UnknownToken
from domain.venues.meteora import MeteoraPool
from domain.venues.raydium import RaydiumPool

DEFAULT = Market.default()


def spot(market: Market, venue: str, x: str, y: str) -> Decimal:
    pool = market.pool(venue, x, y)
    assert pool is not None, f"no {venue} pool for {x}/{y}"
    return pool.spot_price(x)


def assert_no_float(value: object) -> None:
    """Walk dataclasses, tuples and mappings: money and prices must never be floats."""
    assert not isinstance(value, float), value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_no_float(getattr(value, field.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            assert_no_float(item)


def test_sol_usdc_trades_near_185_on_both_venues_at_slightly_different_prices() -> None:
    raydium = spot(DEFAULT, "raydium", SOL.mint, USDC.mint)
    meteora = spot(DEFAULT, "meteora", SOL.mint, USDC.mint)
    assert raydium == Decimal("185")
    assert raydium != meteora and abs(meteora / raydium - 1) < Decimal("0.001")


@pytest.mark.parametrize(
    ("x", "y", "price"),
    [(SOL, USDT, Decimal("185")), (USDC, USDT, Decimal("1")), (JUP, USDC, Decimal("0.85")),
     (RAY, USDC, Decimal("2.5")), (MSOL, SOL, Decimal("1.28")), (BONK, USDC, Decimal("0.000022"))],
)
def test_the_default_pairs_are_priced_like_the_real_market(x: Token, y: Token,
                                                          price: Decimal) -> None:
    pools = DEFAULT.pools_between(x.mint, y.mint)
    assert pools
    for pool in pools:
        assert abs(pool.spot_price(pool.token_x.mint) / price - 1) < Decimal("0.002")


def test_raydium_is_deeper_and_meteora_is_concentrated_bins() -> None:
    raydium = DEFAULT.pool("raydium", SOL.mint, USDC.mint)
    meteora = DEFAULT.pool("meteora", SOL.mint, USDC.mint)
    assert isinstance(raydium, RaydiumPool) and isinstance(meteora, MeteoraPool)
    big = 5_000 * 10**9
    assert raydium.quote(SOL.mint, big).amount_out > meteora.quote(SOL.mint, big).amount_out


@pytest.mark.parametrize(("a", "b"), [(BONK, JUP), (MSOL, USDC), (RAY, SOL), (BONK, USDT)])
def test_some_pairs_have_no_direct_pool_so_routing_needs_a_hop(a: Token, b: Token) -> None:
    assert DEFAULT.pools_between(a.mint, b.mint) == ()


def test_neighbors_are_per_venue() -> None:
    assert DEFAULT.neighbors("meteora", BONK.mint) == {USDC.mint}
    assert DEFAULT.neighbors("raydium", BONK.mint) == {SOL.mint}
    assert DEFAULT.neighbors("raydium", "unknown") == frozenset()


def test_tokens_are_known_by_mint_and_unknown_mints_raise() -> None:
    assert DEFAULT.token(USDC.mint) == USDC
    with pytest.raises(UnknownToken):
        DEFAULT.token("unknown")


def test_with_pool_replaces_the_pool_of_the_same_venue_and_pair() -> None:
    old = DEFAULT.pool("raydium", SOL.mint, USDC.mint)
    assert old is not None
    moved = DEFAULT.with_pool(old.repriced(Decimal("200")))
    assert len(moved.pools) == len(DEFAULT.pools)
    assert abs(spot(moved, "raydium", USDC.mint, SOL.mint) * 200 - 1) < Decimal("1e-12")
    assert spot(DEFAULT, "raydium", SOL.mint, USDC.mint) == 185  # the original is untouched


def test_with_pool_adds_a_newly_listed_pool() -> None:
    listing = RaydiumPool.from_price(JUP, RAY, 1_000_000 * 10**6, Decimal("0.34"))
    market = DEFAULT.with_pool(listing)
    assert market.pools_between(RAY.mint, JUP.mint) == (listing,)
    assert len(market.pools) == len(DEFAULT.pools) + 1


def test_a_market_holds_one_pool_per_venue_and_pair() -> None:
    pool = DEFAULT.pools[0]
    with pytest.raises(ValueError, match="one pool per venue and pair"):
        Market.of([pool, pool])


def test_markets_compare_equal_whatever_order_their_pools_came_in() -> None:
    assert Market.of(reversed(DEFAULT.pools), dict(DEFAULT.reference_usd)) == DEFAULT


def test_drift_is_a_pure_function_of_the_seed() -> None:
    first = DEFAULT.drift(random.Random(7), 10)
    assert first == DEFAULT.drift(random.Random(7), 10)
    assert first != DEFAULT.drift(random.Random(8), 10)
    assert Market.default(seed=3) == Market.default(seed=3) != DEFAULT
    assert spot(DEFAULT, "raydium", SOL.mint, USDC.mint) == 185  # the original is untouched


def test_drift_moves_prices_by_a_bounded_random_step() -> None:
    moved = DEFAULT.drift(random.Random(1), 20)
    change = spot(moved, "raydium", SOL.mint, USDC.mint) / 185 - 1
    assert 0 < abs(change) <= Decimal("0.0031")  # 20 bps of SOL plus up to 5 + 2.5 of pool noise


def test_drift_keeps_depth_constant_product_k_and_bin_liquidity() -> None:
    moved = DEFAULT.drift(random.Random(2), 50)
    for before, after in zip(DEFAULT.pools, moved.pools):
        if isinstance(before, RaydiumPool) and isinstance(after, RaydiumPool):
            k, k_after = before.reserve_x * before.reserve_y, after.reserve_x * after.reserve_y
            assert abs(Decimal(k_after) / k - 1) < Decimal("1e-9")
        elif isinstance(before, MeteoraPool) and isinstance(after, MeteoraPool):
            assert after.bin_liquidity == before.bin_liquidity
            assert after.upper_id - after.lower_id == before.upper_id - before.lower_id


def test_stablecoins_stay_pegged_and_msol_follows_sol() -> None:
    moved = DEFAULT.drift(random.Random(4), 100)
    assert moved.reference_price(USDT.mint) == moved.reference_price(USDC.mint) == 1
    sol, msol = moved.reference_price(SOL.mint), moved.reference_price(MSOL.mint)
    assert sol is not None and msol is not None and sol != 185
    assert abs(msol / sol - Decimal("1.28")) < Decimal("1e-15")


def no_arbitrage_band(market: Market, a: Token, b: Token) -> Decimal:
    """The widest gap arbitrage leaves between two venues of a pair: both lowest fees, plus
    one DLMM bin (a DLMM pool sits on its nearest bin's price, not where arbitrage put it)."""
    pools = market.pools_between(a.mint, b.mint)
    fees = sum(Decimal(p.fee_bounds().lowest.numerator) / p.fee_bounds().lowest.denominator
               for p in pools)
    bins = max((p.bin_step_bps for p in pools if isinstance(p, MeteoraPool)), default=0)
    return fees + Decimal(bins) / 10_000


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_a_long_walk_keeps_the_venues_within_their_fees_of_each_other(seed: int) -> None:
    market, rng = DEFAULT, random.Random(seed)
    for _ in range(200):
        market = market.drift(rng, 10)
        for a, b in [(SOL, USDC), (SOL, USDT), (USDC, USDT), (MSOL, SOL)]:
            prices = [pool.spot_price(a.mint) for pool in market.pools_between(a.mint, b.mint)]
            band = no_arbitrage_band(market, a, b)
            assert max(prices) / min(prices) - 1 <= band, (a.symbol, b.symbol, prices, band)
    usdc_usdt = spot(market, "raydium", USDC.mint, USDT.mint)
    assert abs(usdc_usdt - 1) < Decimal("0.001")  # a quiet pair: a tenth of the shocks


def test_each_venue_is_the_dearer_one_part_of_the_time() -> None:
    market, rng = DEFAULT, random.Random(11)
    raydium_dearer = 0
    for _ in range(300):
        market = market.drift(rng, 10)
        raydium = spot(market, "raydium", SOL.mint, USDC.mint)
        raydium_dearer += raydium > spot(market, "meteora", SOL.mint, USDC.mint)
    assert 60 < raydium_dearer < 240  # independent shocks: neither venue leads for good


def test_arbitrage_closes_a_gap_wider_than_the_fees_down_to_them() -> None:
    meteora = DEFAULT.pool("meteora", SOL.mint, USDC.mint)
    assert isinstance(meteora, MeteoraPool)
    apart = DEFAULT.with_pool(meteora.repriced(Decimal("195")))  # 5 % above Raydium's 185
    moved = apart.drift(random.Random(3), 0)
    prices = [pool.spot_price(SOL.mint) for pool in moved.pools_between(SOL.mint, USDC.mint)]
    assert max(prices) / min(prices) - 1 <= no_arbitrage_band(moved, SOL, USDC)
    assert Decimal(185) < min(prices) and max(prices) < Decimal(195)  # both moved, halfway each


def test_over_a_walk_each_venue_wins_a_fair_share_of_ordinary_orders() -> None:
    """Orders of 0.5 to 20 SOL, both ways: the best venue changes with the market."""
    market, rng, sizes = DEFAULT, random.Random(5), random.Random(6)
    wins: dict[str, int] = {}
    for _ in range(150):
        market = market.drift(rng, 10)
        sol = sizes.randint(5, 200) * 10**8
        for mint_in, mint_out, amount in ((SOL.mint, USDC.mint, sol),
                                          (USDC.mint, SOL.mint, sol * 185 // 1000)):
            legs = best_route(market, mint_in, mint_out, amount).legs
            winner = legs[0].venue if len(legs) == 1 else "split"
            wins[winner] = wins.get(winner, 0) + 1
    assert wins.get("raydium", 0) >= 60 and wins.get("meteora", 0) >= 60, wins


def test_a_fresh_listing_without_reference_prices_still_drifts() -> None:
    listing = RaydiumPool.from_price(JUP, RAY, 1_000_000 * 10**6, Decimal("0.34"))
    market = Market.of([listing])
    moved = market.drift(random.Random(5), 30)
    pool: Pool | None = moved.pool("raydium", JUP.mint, RAY.mint)
    assert pool is not None and pool.spot_price(JUP.mint) != listing.spot_price(JUP.mint)


def test_drift_refuses_a_negative_volatility() -> None:
    with pytest.raises(ValueError):
        DEFAULT.drift(random.Random(0), -1)


def test_no_float_anywhere_in_a_drifted_market() -> None:
    market = DEFAULT.drift(random.Random(9), 25)
    assert_no_float(market)
    for pool in market.pools:
        assert type(pool.spot_price(pool.token_x.mint)) is Decimal
