"""The DLMM bin walk is fast and still exact: it returns what a plain, bin-by-bin reading of
the rules returns, to the base unit, for any pool state, direction and amount.

`reference_swap` is the walk as first written (one step per bin); the engine's `_swap` does
the same integer arithmetic but keeps each pool state's full bins with running totals
(`_Ladder`) and bisects them, because routing and the waiting book quote one pool state
many times, across hundreds of bins."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pools import InsufficientLiquidity, PoolSwap, ceil_div, impact_bps, sells_x
from domain.tokens import SOL, USDC
from domain.venues.meteora import (
    _FRAC,
    _ONE,
    FEE_PIPS,
    MAX_VOLATILITY,
    MeteoraPool,
)


def reference_swap(pool: MeteoraPool, mint_in: str, amount_in: int) -> PoolSwap:
    sell_x = sells_x(pool, mint_in)
    bin_id, price, crossed = pool.active_id, pool.price_q128, 0
    reserve_in = pool.active_x if sell_x else pool.active_y
    reserve_out = pool.active_y if sell_x else pool.active_x

    def input_for(out: int) -> int:
        return ceil_div(out << _FRAC, price) if sell_x else ceil_div(out * price, _ONE)

    def output_for(net_in: int) -> int:
        return (net_in * price) >> _FRAC if sell_x else (net_in << _FRAC) // price

    remaining, amount_out, fee = amount_in, 0, 0
    while True:
        rate = pool.fee_pips(crossed)
        drain_net = input_for(reserve_out)
        drain_gross = ceil_div(drain_net * FEE_PIPS, FEE_PIPS - rate)
        if remaining <= drain_gross:
            bin_fee = ceil_div(remaining * rate, FEE_PIPS)
            net = remaining - bin_fee
            got = min(output_for(net), reserve_out)
            reserve_in, reserve_out = reserve_in + net, reserve_out - got
            amount_out, fee = amount_out + got, fee + bin_fee
            break
        amount_out += reserve_out
        fee += drain_gross - drain_net
        remaining -= drain_gross
        bin_id += -1 if sell_x else 1
        if not pool.lower_id <= bin_id <= pool.upper_id:
            raise InsufficientLiquidity(f"{pool.key} has no liquidity past bin {bin_id}")
        step = _ONE + (pool.bin_step_bps << _FRAC) // 10_000
        price = (price << _FRAC) // step if sell_x else (price * step) >> _FRAC
        crossed += 1
        reserve_in = 0
        reserve_out = pool.bin_liquidity if sell_x else (pool.bin_liquidity << _FRAC) // price
    start = pool.price_q128
    net_total = amount_in - fee
    impact = (impact_bps(net_total * start, _ONE, amount_out) if sell_x
              else impact_bps(net_total * _ONE, start, amount_out))
    x, y = (reserve_in, reserve_out) if sell_x else (reserve_out, reserve_in)
    after = MeteoraPool(pool.token_x, pool.token_y, pool.bin_step_bps, bin_id, x, y,
                        pool.bin_liquidity, pool.lower_id, pool.upper_id, pool.base_fee_pips,
                        pool.variable_fee_control, min(pool.volatility + crossed, MAX_VOLATILITY))
    return PoolSwap(amount_in, amount_out, fee, impact, after)


@st.composite
def pools(draw: st.DrawFn) -> MeteoraPool:
    pool = MeteoraPool.around(
        SOL, USDC, Decimal(draw(st.integers(5, 500))),
        bin_step_bps=draw(st.sampled_from([1, 5, 10, 25, 100])),
        bin_liquidity=draw(st.integers(1, 10_000)) * 10**6,
        bins_each_side=draw(st.integers(1, 300)),
        base_fee_pips=draw(st.integers(0, 20_000)))
    # An earlier swap's volatility, sometimes near the fee cap.
    return MeteoraPool(pool.token_x, pool.token_y, pool.bin_step_bps, pool.active_id,
                       pool.active_x, pool.active_y, pool.bin_liquidity, pool.lower_id,
                       pool.upper_id, pool.base_fee_pips, draw(st.integers(0, 3)),
                       draw(st.sampled_from([0, 7, 150, MAX_VOLATILITY - 2])))


def _outcome(swap: object) -> object:
    try:
        return swap()  # type: ignore[operator]
    except InsufficientLiquidity as error:
        return ("InsufficientLiquidity", str(error))


@settings(max_examples=300, deadline=None)
@given(pool=pools(), sell_sol=st.booleans(), amount=st.integers(1, 10**15))
def test_the_walk_equals_the_plain_reading_of_the_rules(
    pool: MeteoraPool, sell_sol: bool, amount: int
) -> None:
    mint = SOL.mint if sell_sol else USDC.mint
    assert _outcome(lambda: pool.quote(mint, amount)) == _outcome(
        lambda: reference_swap(pool, mint, amount))


@pytest.mark.parametrize("mint", [SOL.mint, USDC.mint])
def test_a_swap_across_hundreds_of_bins_equals_the_plain_reading(mint: str) -> None:
    pool = MeteoraPool.around(SOL, USDC, Decimal("185"), bin_step_bps=10,
                              bin_liquidity=3_000 * 10**6, bins_each_side=400,
                              base_fee_pips=1_000)
    amount = 2_000 * 10**9 if mint == SOL.mint else 450_000 * 10**6
    swap = pool.quote(mint, amount)
    assert swap == reference_swap(pool, mint, amount)
    assert abs(swap.pool_after.active_id - pool.active_id) > 100  # it did cross hundreds
