"""Routing: best venue, splits, multi-hop paths, execution against a moved market, slippage."""

from __future__ import annotations

import dataclasses
import io
import tokenize
from decimal import Decimal
from pathlib import Path as FilePath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import domain.routing as routing
from domain.market import Market
from domain.quotes import RoutingDecision
from domain.routing import (
    NoRoute,
    Path,
    best_route,
    candidate_paths,
    execute_legs,
    min_amount_out,
)
from domain.tokens import BONK, DEFAULT_TOKENS, JUP, MSOL, RAY, SOL, USDC, USDT, Token
from domain.venues.meteora import MeteoraPool
from domain.venues.raydium import RaydiumPool

DEFAULT = Market.default()
SOL_UNITS = 10**9


def sol(amount: int) -> int:
    return amount * SOL_UNITS


def single_venue_output(market: Market, venue: str, amount_in: int) -> int:
    pool = market.pool(venue, SOL.mint, USDC.mint)
    assert pool is not None
    return pool.quote(SOL.mint, amount_in).amount_out


def assert_consistent(decision: RoutingDecision) -> None:
    assert sum(leg.amount_in for leg in decision.legs) == decision.amount_in
    assert sum(leg.amount_out for leg in decision.legs) == decision.amount_out
    assert all(decision.amount_out >= quote.amount_out for quote in decision.quotes)
    assert all(leg.path[0] == decision.token_in and leg.path[-1] == decision.token_out
               for leg in decision.legs)


def assert_no_float(value: object) -> None:
    assert not isinstance(value, float), value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_no_float(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            assert_no_float(item)


# --- the best venue wins --------------------------------------------------------------------


def test_one_sol_goes_to_meteora_whose_lower_fee_pays_more() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(1))
    # Meteora: its bin at 185.045 less 20 bps = 184.674850. Raydium: 185 less 25 bps and
    # 0.002% = 184.533818.
    assert decision.venue == "meteora"
    assert decision.amount_out == 184_674_850
    assert decision.reason == "meteora pays 184.674 USDC vs raydium 184.533 (+0.07%)"
    assert {(q.venue, len(q.path)) for q in decision.quotes} == {
        ("meteora", 2), ("meteora", 3), ("raydium", 2), ("raydium", 3)  # direct and via USDT
    }
    assert_consistent(decision)


def test_every_candidate_is_quoted_with_fee_and_impact_and_recorded_best_first() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(1))
    outputs = [quote.amount_out for quote in decision.quotes]
    assert outputs == sorted(outputs, reverse=True)
    raydium = next(q for q in decision.quotes if q.venue == "raydium" and len(q.path) == 2)
    assert raydium.fee == 2_500_000 and raydium.price_impact_bps == Decimal("0.19")


def test_the_winner_follows_the_price_when_meteora_falls_behind() -> None:
    cheap = DEFAULT
    for stable in (USDC, USDT):  # both, or the router sells SOL for USDT and USDT for USDC
        meteora = DEFAULT.pool("meteora", SOL.mint, stable.mint)
        assert meteora is not None
        cheap = cheap.with_pool(meteora.repriced(Decimal("184")))
    decision = best_route(cheap, SOL.mint, USDC.mint, sol(1))
    assert decision.venue == "raydium"
    assert decision.reason.startswith("raydium pays 184.533 USDC vs meteora 183.")


# --- splitting ------------------------------------------------------------------------------


def test_a_5000_sol_order_is_split_and_beats_both_venues() -> None:
    amount = sol(5_000)
    raydium_alone = single_venue_output(DEFAULT, "raydium", amount)  # 838,997.499431 USDC
    meteora_alone = single_venue_output(DEFAULT, "meteora", amount)  # 729,312.767206 USDC
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, amount)
    # split 71/29: 3,568.92 SOL to raydium, 1,431.08 SOL to meteora, 861,823.584064 USDC
    assert decision.venue == "split"
    assert [leg.venue for leg in decision.legs] == ["raydium", "meteora"]
    assert decision.amount_out > raydium_alone * Decimal("1.02") > meteora_alone
    assert decision.reason.startswith("split 71/29 raydium/meteora pays 861,823.")
    assert "2.72% more than raydium alone (838,997.49)" in decision.reason
    assert_consistent(decision)


def test_the_split_is_the_optimum_to_a_base_unit_or_so() -> None:
    amount = sol(5_000)
    ray, met = (Path(venue, (SOL.mint, USDC.mint)) for venue in ("raydium", "meteora"))

    def total(share: int) -> int:
        return (routing._path_output(DEFAULT, ray, amount - share)
                + routing._path_output(DEFAULT, met, share))

    coarse = max(range(0, amount + 1, amount // 1_000), key=total)
    fine = max(range(max(0, coarse - amount // 1_000), coarse + amount // 1_000,
                     amount // 1_000_000), key=total)
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, amount)
    assert decision.amount_out >= total(fine) - 2


def test_a_tiny_order_is_not_split() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(1))
    assert len(decision.legs) == 1


def test_the_split_search_is_bounded_and_small_orders_stop_after_one_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = routing._path_output

    def counting(market: Market, path: Path, amount: int) -> int:
        nonlocal calls
        calls += 1
        return real(market, path, amount)

    monkeypatch.setattr(routing, "_path_output", counting)
    best_route(DEFAULT, SOL.mint, USDC.mint, sol(1))
    assert calls == 2  # one probe: 1% moved to raydium loses, so no search
    calls = 0
    best_route(DEFAULT, SOL.mint, USDC.mint, sol(5_000))
    assert calls <= 2 * 40  # ~33 golden-section steps of two legs each, plus the final legs


def test_a_venue_that_cannot_fill_the_order_still_takes_what_it_can() -> None:
    narrow = MeteoraPool.around(SOL, USDC, Decimal("185"), bin_step_bps=10,
                                bin_liquidity=3_000 * 10**6, bins_each_side=20,
                                base_fee_pips=1_000)
    market = DEFAULT.with_pool(narrow)  # ~60,000 USDC of bids: about 320 SOL
    decision = best_route(market, SOL.mint, USDC.mint, sol(1_000))
    assert "meteora" not in {(q.venue) for q in decision.quotes if len(q.path) == 2}
    meteora_leg = next(leg for leg in decision.legs if leg.venue == "meteora")
    assert sol(100) < meteora_leg.amount_in < sol(330)
    assert decision.amount_out > single_venue_output(market, "raydium", sol(1_000))
    assert execute_legs(market, decision.legs)[0] == decision.amount_out


def test_an_order_no_single_venue_can_fill_may_still_be_filled_by_a_split() -> None:
    narrow = MeteoraPool.around(SOL, USDC, Decimal("185"), bin_step_bps=10,
                                bin_liquidity=3_000 * 10**6, bins_each_side=20,
                                base_fee_pips=1_000)
    shallow = RaydiumPool.from_price(SOL, USDC, sol(1), Decimal("185"))
    market = Market.of([narrow, shallow])
    # Raydium always fills (at a terrible price); the point is that the split recovers.
    decision = best_route(market, SOL.mint, USDC.mint, sol(300))
    assert decision.venue == "split" or decision.venue == "meteora"
    assert_consistent(decision)


def test_no_route_when_the_only_pool_cannot_fill() -> None:
    narrow = MeteoraPool.around(SOL, USDC, Decimal("185"), bin_step_bps=10,
                                bin_liquidity=3_000 * 10**6, bins_each_side=5,
                                base_fee_pips=1_000)
    with pytest.raises(NoRoute, match="no venue has the liquidity"):
        best_route(Market.of([narrow]), SOL.mint, USDC.mint, sol(1_000))


# --- multi-hop ------------------------------------------------------------------------------


def test_multi_hop_is_used_when_there_is_no_direct_pool() -> None:
    decision = best_route(DEFAULT, BONK.mint, JUP.mint, 1_000_000 * 10**BONK.decimals)
    assert {len(quote.path) for quote in decision.quotes} == {3}
    assert decision.legs[0].path in ((BONK.mint, SOL.mint, JUP.mint),
                                     (BONK.mint, USDC.mint, JUP.mint))
    assert decision.reason.endswith("; no direct BONK/JUP pool exists")
    assert decision.amount_out > 0


def test_multi_hop_beats_a_direct_pool_when_it_pays() -> None:
    market = Market.of([
        RaydiumPool.from_price(SOL, USDC, sol(100), Decimal("185")),  # shallow direct pool
        RaydiumPool.from_price(SOL, USDT, sol(50_000), Decimal("185")),
        RaydiumPool.from_price(USDT, USDC, 10**13, Decimal("1")),
    ])
    decision = best_route(market, SOL.mint, USDC.mint, sol(10))
    assert decision.legs[0].path == (SOL.mint, USDT.mint, USDC.mint)
    assert decision.reason.startswith("raydium via USDT pays")


def test_paths_are_direct_first_then_through_every_shared_neighbor() -> None:
    paths = candidate_paths(DEFAULT, MSOL.mint, USDC.mint)
    assert paths == (Path("meteora", (MSOL.mint, SOL.mint, USDC.mint)),
                     Path("raydium", (MSOL.mint, SOL.mint, USDC.mint)))


@pytest.mark.parametrize(
    ("token_in", "token_out", "amount", "message"),
    [
        (JUP.mint, RAY.mint, 10**6, "no pool or two-hop path"),  # three hops would be needed
        ("unknown-mint", USDC.mint, 10**6, "no pool or two-hop path"),
        (SOL.mint, SOL.mint, 10**9, "same token"),
        (SOL.mint, USDC.mint, 0, "positive"),
        (USDC.mint, BONK.mint, 1, "too small"),  # a millionth of a USDC buys no BONK unit
    ],
)
def test_no_route_is_a_named_error_with_the_reason(token_in: str, token_out: str, amount: int,
                                                   message: str) -> None:
    with pytest.raises(NoRoute, match=message):
        best_route(DEFAULT, token_in, token_out, amount)


# --- execution and slippage -----------------------------------------------------------------


def test_executing_the_legs_on_the_same_market_yields_exactly_the_quote() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(5_000))
    amount_out, after = execute_legs(DEFAULT, decision.legs)
    assert amount_out == decision.amount_out
    assert after != DEFAULT and DEFAULT == Market.default()  # executing moved a copy


def test_slippage_protection_catches_a_market_that_moved_against_the_order() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(100))
    floor = min_amount_out(decision.amount_out, slippage_bps=50)
    # Someone dumps 2,000 SOL on both venues before our transaction lands.
    _, moved = execute_legs(DEFAULT, best_route(DEFAULT, SOL.mint, USDC.mint, sol(2_000)).legs)
    landed, _ = execute_legs(moved, decision.legs)
    assert landed < floor < decision.amount_out


def test_executing_a_leg_whose_pool_is_gone_raises_no_route() -> None:
    decision = best_route(DEFAULT, SOL.mint, USDC.mint, sol(1))
    without = Market.of([p for p in DEFAULT.pools if p.venue != "meteora"])
    with pytest.raises(NoRoute, match="no longer has"):
        execute_legs(without, decision.legs)


@pytest.mark.parametrize(("amount", "bps", "floor"),
                         [(1_000_000, 50, 995_000), (999, 50, 994), (184_859_895, 100, 183_011_296),
                          (7, 0, 7), (7, 10_000, 0)])
def test_min_amount_out_rounds_down(amount: int, bps: int, floor: int) -> None:
    assert min_amount_out(amount, bps) == floor


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_min_amount_out_refuses_slippage_out_of_range(bps: int) -> None:
    with pytest.raises(ValueError, match="slippage"):
        min_amount_out(1_000, bps)


@given(amount=st.integers(min_value=0, max_value=2**64), bps=st.integers(0, 10_000))
def test_min_amount_out_is_the_largest_integer_within_tolerance(amount: int, bps: int) -> None:
    floor = min_amount_out(amount, bps)
    assert floor * 10_000 <= amount * (10_000 - bps) < (floor + 1) * 10_000


# --- properties over the whole default market -----------------------------------------------


@settings(deadline=None, max_examples=60)
@given(pair=st.permutations(DEFAULT_TOKENS).map(lambda tokens: tokens[:2]),
       amount=st.integers(0, 14).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1))))
def test_any_route_is_consistent_executable_and_float_free(pair: list[Token], amount: int) -> None:
    """Amounts log-uniform from one base unit to 1e15 (a million SOL, ten billion BONK)."""
    token_in, token_out = pair
    try:
        decision = best_route(DEFAULT, token_in.mint, token_out.mint, amount)
    except NoRoute:
        return
    assert_consistent(decision)
    assert_no_float(decision)
    assert execute_legs(DEFAULT, decision.legs)[0] == decision.amount_out
    assert decision.token_in == token_in.mint and decision.token_out == token_out.mint


def test_the_pricing_core_has_no_float_literal_or_float_call_in_its_source() -> None:
    """Money is never a float: not in a value, and not in the code that computes one."""
    root = FilePath(routing.__file__).parent
    for name in ("tokens.py", "pools.py", "market.py", "routing.py"):
        source = (root / name).read_text()
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NUMBER:
                assert not any(mark in token.string.lower() for mark in ".ej"), (name, token)
            assert not (token.type == tokenize.NAME and token.string == "float"), (name, token)
