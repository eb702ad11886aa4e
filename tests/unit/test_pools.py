"""Venue math: constant-product and DLMM-like pools on integer base units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pools import InsufficientLiquidity, Pool, PoolKey
from domain.tokens import SOL, USDC
from domain.venues.meteora import FEE_PIPS, MeteoraPool
from domain.venues.raydium import RaydiumPool

LAMPORTS = 10**9
MICRO_USDC = 10**6


def raydium() -> RaydiumPool:
    """50,000 SOL against 9,250,000 USDC: 185 USDC per SOL."""
    return RaydiumPool.from_price(SOL, USDC, 50_000 * LAMPORTS, Decimal("185"))


def meteora(bins_each_side: int = 400) -> MeteoraPool:
    """10 bps bins of 3,000 USDC each, base fee 10 bps."""
    return MeteoraPool.around(SOL, USDC, Decimal("185"), bin_step_bps=10,
                              bin_liquidity=3_000 * MICRO_USDC, bins_each_side=bins_each_side,
                              base_fee_pips=1_000)


POOLS: dict[str, Pool] = {"raydium": raydium(), "meteora": meteora()}
pool_names = st.sampled_from(sorted(POOLS))
mints_in = st.sampled_from([SOL.mint, USDC.mint])
# Up to ~1,000 SOL or ~185,000 USDC: large enough to cross many bins, small enough to fill.
amounts = st.integers(min_value=1, max_value=185_000 * MICRO_USDC)


def test_both_venues_satisfy_the_pool_protocol() -> None:
    pools: list[Pool] = [raydium(), meteora()]
    assert [pool.key for pool in pools] == [
        PoolKey.of("raydium", USDC.mint, SOL.mint), PoolKey.of("meteora", SOL.mint, USDC.mint)
    ]


# --- Raydium: constant product ---------------------------------------------------------------


@given(swaps=st.lists(st.tuples(mints_in, amounts), min_size=1, max_size=20))
def test_constant_product_k_never_decreases(swaps: list[tuple[str, int]]) -> None:
    pool = raydium()
    for mint_in, amount in swaps:
        after = pool.quote(mint_in, amount).pool_after
        assert isinstance(after, RaydiumPool)
        assert after.reserve_x * after.reserve_y >= pool.reserve_x * pool.reserve_y
        pool = after


@given(mint_in=mints_in, amount=amounts)
def test_raydium_fee_is_exactly_25_bps_of_the_amount_in_rounded_up(mint_in: str,
                                                                   amount: int) -> None:
    pool = raydium()
    swap = pool.quote(mint_in, amount)
    assert swap.fee == -(-amount * 25 // 10_000)
    sell_sol = mint_in == SOL.mint
    reserve_in = pool.reserve_x if sell_sol else pool.reserve_y
    reserve_out = pool.reserve_y if sell_sol else pool.reserve_x
    net = amount - swap.fee
    assert swap.amount_out == reserve_out * net // (reserve_in + net)


def test_one_sol_on_raydium_pays_185_less_the_fee_and_a_sliver_of_impact() -> None:
    swap = raydium().quote(SOL.mint, LAMPORTS)
    assert swap.fee == 2_500_000  # 0.0025 SOL
    assert swap.amount_out == 184_533_818  # 185 * 0.9975 = 184.5375, less 0.002% impact
    assert swap.price_impact_bps == Decimal("0.19")


def test_raydium_spot_price_is_decimals_adjusted_both_ways() -> None:
    pool = raydium()
    assert pool.spot_price(SOL.mint) == Decimal("185")
    assert abs(pool.spot_price(USDC.mint) * 185 - 1) < Decimal("1e-17")


def test_repricing_raydium_keeps_k_and_lands_on_the_price() -> None:
    pool = raydium()
    moved = pool.repriced(Decimal("190"))
    k, k_moved = pool.reserve_x * pool.reserve_y, moved.reserve_x * moved.reserve_y
    assert abs(k_moved - k) <= 2 * (pool.reserve_x + pool.reserve_y)  # isqrt rounding only
    assert abs(moved.spot_price(SOL.mint) - 190) < Decimal("1e-9")


# --- Meteora: DLMM bins and dynamic fee -----------------------------------------------------


def test_a_swap_inside_the_active_bin_has_no_price_impact_and_only_the_base_fee() -> None:
    pool = meteora()
    swap = pool.quote(SOL.mint, LAMPORTS)
    assert swap.fee == LAMPORTS * 1_000 // FEE_PIPS  # 10 bps
    assert swap.price_impact_bps == 0
    assert swap.pool_after.spot_price(SOL.mint) == pool.spot_price(SOL.mint)


def test_the_variable_fee_grows_with_the_square_of_the_bins_crossed() -> None:
    pool = meteora()
    rates = [pool.fee_pips(crossed) for crossed in (0, 10, 20, 50, 100)]
    # 10 bins of 10 bps add 1 bps (100 pips), 20 add 4 bps, 100 add 1%.
    assert rates == [1_000, 1_100, 1_400, 3_500, 11_000]
    assert pool.fee_pips(10_000) == 100_000  # capped at 10%


def test_meteora_effective_fee_rate_grows_with_the_bins_a_swap_crosses() -> None:
    pool = meteora()
    ladder = [LAMPORTS * sol for sol in (1, 50, 200, 500, 1_000, 2_000)]
    swaps = [pool.quote(SOL.mint, amount) for amount in ladder]
    afters = [swap.pool_after for swap in swaps if isinstance(swap.pool_after, MeteoraPool)]
    assert len(afters) == len(swaps)
    crossed = [pool.active_id - after.active_id for after in afters]
    fee_rates = [Decimal(swap.fee) / swap.amount_in for swap in swaps]
    assert crossed == sorted(crossed) and crossed[0] == 0 and crossed[-1] > 100
    assert fee_rates == sorted(fee_rates) and fee_rates[0] == Decimal("0.001")
    assert fee_rates[-1] > 3 * fee_rates[0]


def test_a_swap_remembers_its_volatility_until_the_pool_decays() -> None:
    after = meteora().quote(SOL.mint, 500 * LAMPORTS).pool_after
    assert isinstance(after, MeteoraPool)
    assert after.volatility == meteora().active_id - after.active_id > 0
    assert after.fee_pips(0) > meteora().fee_pips(0)
    assert after.decayed().volatility == after.volatility // 2


def test_selling_sol_walks_bins_down_and_buying_it_walks_them_up() -> None:
    pool = meteora()
    sold = pool.quote(SOL.mint, 100 * LAMPORTS).pool_after
    bought = pool.quote(USDC.mint, 18_500 * MICRO_USDC).pool_after
    assert isinstance(sold, MeteoraPool) and isinstance(bought, MeteoraPool)
    assert sold.active_id < pool.active_id < bought.active_id
    assert sold.spot_price(SOL.mint) < pool.spot_price(SOL.mint) < bought.spot_price(SOL.mint)


def test_a_swap_beyond_the_last_bin_raises_insufficient_liquidity() -> None:
    narrow = meteora(bins_each_side=5)  # about 16,500 USDC of bids below the active bin
    with pytest.raises(InsufficientLiquidity):
        narrow.quote(SOL.mint, 100 * LAMPORTS)
    assert narrow.quote(SOL.mint, 50 * LAMPORTS).amount_out > 0


def test_repricing_meteora_moves_the_active_bin_and_the_liquidity_range_with_it() -> None:
    pool = meteora()
    moved = pool.repriced(Decimal("190"))
    assert abs(moved.spot_price(SOL.mint) / 190 - 1) <= Decimal("0.0005")  # half a bin step
    assert moved.upper_id - moved.lower_id == pool.upper_id - pool.lower_id
    assert moved.active_id - pool.active_id == moved.lower_id - pool.lower_id


# --- both venues ----------------------------------------------------------------------------


@given(name=pool_names, mint_in=mints_in, a=amounts, b=amounts)
def test_output_is_monotone_in_input(name: str, mint_in: str, a: int, b: int) -> None:
    pool = POOLS[name]
    small, large = sorted((a, b))
    assert pool.quote(mint_in, small).amount_out <= pool.quote(mint_in, large).amount_out


@settings(deadline=None)
@given(name=pool_names, mint_in=mints_in, a=amounts, b=amounts)
def test_output_is_concave_in_input(name: str, mint_in: str, a: int, b: int) -> None:
    """out(a) + out(b) <= 2 out((a + b) / 2), up to rounding of a few base units."""
    pool = POOLS[name]
    middle = (a + b) // 2
    shift = USDC.decimals - SOL.decimals if mint_in == SOL.mint else SOL.decimals - USDC.decimals
    spot_raw = pool.spot_price(mint_in).scaleb(shift)  # base units out per base unit in
    slack = 4 + 4 * spot_raw  # the fee and the output each round by one base unit
    total = pool.quote(mint_in, a).amount_out + pool.quote(mint_in, b).amount_out
    assert total <= 2 * pool.quote(mint_in, middle).amount_out + slack


@pytest.mark.parametrize("name", sorted(POOLS))
def test_price_impact_grows_with_size(name: str) -> None:
    pool = POOLS[name]
    impacts = [pool.quote(SOL.mint, sol * LAMPORTS).price_impact_bps
               for sol in (10, 50, 100, 250, 500, 1_000, 2_000)]
    assert impacts == sorted(impacts) and len(set(impacts)) == len(impacts)
    assert impacts[-1] > 100  # 2,000 SOL moves either pool by more than 1%


@given(name=pool_names, mint_in=mints_in, amount=amounts)
def test_a_round_trip_never_makes_money(name: str, mint_in: str, amount: int) -> None:
    pool = POOLS[name]
    there = pool.quote(mint_in, amount)
    mint_back = USDC.mint if mint_in == SOL.mint else SOL.mint
    if there.amount_out == 0:
        return
    back = there.pool_after.quote(mint_back, there.amount_out)
    assert back.amount_out < amount


@given(name=pool_names, mint_in=mints_in, amount=amounts)
def test_quoting_leaves_the_pool_untouched_and_reports_no_floats(
    name: str, mint_in: str, amount: int
) -> None:
    pool = POOLS[name]
    before = repr(pool)
    swap = pool.quote(mint_in, amount)
    assert repr(pool) == before
    assert all(type(value) is int for value in (swap.amount_in, swap.amount_out, swap.fee))
    assert type(swap.price_impact_bps) is Decimal and swap.price_impact_bps >= 0


@pytest.mark.parametrize("name", sorted(POOLS))
@pytest.mark.parametrize("amount", [0, -1, 1.5, True, Decimal(1)])
def test_quotes_refuse_anything_but_a_positive_integer(name: str, amount: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        POOLS[name].quote(SOL.mint, amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(POOLS))
def test_quotes_refuse_a_mint_the_pool_does_not_trade(name: str) -> None:
    with pytest.raises(ValueError, match="not traded"):
        POOLS[name].quote("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 1_000)
