"""Market events applied to a market (`fold`), and what the follower does with a batch of
records: decode, skip what it cannot read, replace the view once, tell each pair's listeners."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import Market
from domain.market_events import (
    LiquidityChanged,
    MarketChange,
    MarketEvent,
    Pair,
    PoolCreated,
    PriceTick,
    fold,
    pool_state,
    snapshot_of,
)
from domain.pools import Pool
from domain.routing import best_route
from domain.tokens import BONK, JUP, SOL, USDC, Token
from domain.venues.meteora import BinState, MeteoraPool
from domain.venues.raydium import RaydiumPool
from oee.settings import Settings
from schemas.codec import Codec
from streams.market_feed import MarketFollower, _in_time_order
from streams.market_view import MarketView

CODEC = Codec.load()
DEFAULT = Market.default()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
WIF = Token("WIF", "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", 6)


def pool(venue: str, x: Token, y: Token, market: Market = DEFAULT) -> Pool:
    found = market.pool(venue, x.mint, y.mint)
    assert found is not None, f"no {venue} {x.symbol}/{y.symbol}"
    return found


def tick(price: str, venue: str | None = "raydium", base: Token = SOL,
         quote: Token = USDC) -> PriceTick:
    return PriceTick(event_id=f"tick-{price}", occurred_at=T0, venue=venue,
                     base_mint=base.mint, quote_mint=quote.mint, price=Decimal(price))


def sol_price(market: Market, venue: str) -> Decimal:
    return pool(venue, SOL, USDC, market).spot_price(SOL.mint)


def wif_listing() -> PoolCreated:
    listed = RaydiumPool.from_price(WIF, SOL, 10**12, Decimal("0.01"))
    return PoolCreated(event_id="listed", occurred_at=T0, venue="raydium", token_x=WIF,
                       token_y=SOL, state=pool_state(listed), liquidity_usd=Decimal("3700"))


# --- fold: one event -----------------------------------------------------------------------


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_snapshot_replaces_the_pool_with_exactly_the_pool_it_describes(venue: str) -> None:
    moved = pool(venue, SOL, USDC).repriced(Decimal("150"))
    folded = fold(DEFAULT, [snapshot_of(moved, "s", T0)])
    assert folded.market == DEFAULT.with_pool(moved)
    assert pool(venue, SOL, USDC, folded.market) == moved


def test_a_tick_moves_one_venue_to_its_price_and_leaves_the_other_alone() -> None:
    market = fold(DEFAULT, [tick("150")]).market
    assert abs(sol_price(market, "raydium") - 150) < Decimal("1e-9")
    assert sol_price(market, "meteora") == sol_price(DEFAULT, "meteora")


def test_a_tick_keeps_the_depth_of_a_constant_product_pool() -> None:
    before = pool("raydium", SOL, USDC)
    after = pool("raydium", SOL, USDC, fold(DEFAULT, [tick("150")]).market)
    assert isinstance(before, RaydiumPool) and isinstance(after, RaydiumPool)
    k_before, k_after = before.reserve_x * before.reserve_y, after.reserve_x * after.reserve_y
    assert abs(k_after / k_before - 1) < 1e-9


def test_a_tick_without_a_venue_moves_every_venue_of_the_pair() -> None:
    market = fold(DEFAULT, [tick("150", venue=None)]).market
    assert abs(sol_price(market, "raydium") - 150) < Decimal("1e-9")
    # A DLMM pool moves to the bin nearest the price: within half a 10 bps bin step.
    assert abs(sol_price(market, "meteora") / 150 - 1) < Decimal("0.0006")


def test_a_tick_quoted_the_other_way_round_is_inverted() -> None:
    market = fold(DEFAULT, [tick(str(Decimal(1) / Decimal(150)), base=USDC, quote=SOL)]).market
    assert abs(sol_price(market, "raydium") - 150) < Decimal("1e-9")


def test_a_listing_adds_a_pool_routing_can_use_at_once() -> None:
    market = fold(DEFAULT, [wif_listing()]).market
    assert market.token(WIF.mint) == WIF
    decision = best_route(market, SOL.mint, WIF.mint, 10**9)
    assert decision.amount_out > 0 and decision.legs[0].venue == "raydium"


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_liquidity_change_replaces_the_state_and_keeps_the_price(venue: str) -> None:
    old = pool(venue, JUP, USDC if venue == "meteora" else SOL)
    state = pool_state(old)
    deeper = (dataclasses.replace(state, bin_liquidity=state.bin_liquidity * 2)
              if isinstance(state, BinState)
              else dataclasses.replace(state, reserve_x=state.reserve_x * 2,
                                       reserve_y=state.reserve_y * 2))
    change = LiquidityChanged(event_id="l", occurred_at=T0, venue=venue, token_x=old.token_x,
                              token_y=old.token_y, state=deeper, liquidity_usd=Decimal(2),
                              previous_liquidity_usd=Decimal(1))
    new = pool(venue, old.token_x, old.token_y, fold(DEFAULT, [change]).market)
    assert pool_state(new) == deeper
    assert abs(new.spot_price(JUP.mint) / old.spot_price(JUP.mint) - 1) < Decimal("1e-9")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (tick("150", base=BONK, quote=JUP), "no raydium"),
        (tick("150", venue="orca"), "no orca"),
        (tick("0"), "positive"),
        (tick("150", quote=SOL), "two different mints"),
        (dataclasses.replace(wif_listing(), venue="meteora"), "meteora does not run"),
    ],
    ids=["unknown pair", "unknown venue", "zero price", "same mint", "venue of another curve"],
)
def test_an_event_the_market_cannot_absorb_is_rejected_and_changes_nothing(
    event: MarketEvent, reason: str
) -> None:
    folded = fold(DEFAULT, [event])
    assert folded.market is DEFAULT and folded.changes == ()
    (rejected,) = folded.rejected
    assert rejected.event is event and reason in rejected.reason


def test_a_dlmm_state_outside_its_range_is_rejected() -> None:
    meteora = pool("meteora", SOL, USDC)
    assert isinstance(meteora, MeteoraPool)
    state = pool_state(meteora)
    assert isinstance(state, BinState)
    broken = dataclasses.replace(state, active_id=meteora.upper_id + 1)
    snapshot = dataclasses.replace(snapshot_of(meteora, "s", T0), state=broken)
    assert "active bin" in fold(DEFAULT, [snapshot]).rejected[0].reason


# --- fold: a batch ---------------------------------------------------------------------------


def test_a_batch_makes_one_change_per_pair_with_its_events_in_order() -> None:
    listing, first, second = wif_listing(), tick("150"), tick("151")
    wif_tick = PriceTick(event_id="w", occurred_at=T0, venue="raydium", base_mint=WIF.mint,
                         quote_mint=SOL.mint, price=Decimal("0.02"))
    bad = tick("150", base=BONK, quote=JUP)
    folded = fold(DEFAULT, [first, listing, bad, second, wif_tick])
    assert [(c.pair, c.events) for c in folded.changes] == [
        (Pair.of(SOL.mint, USDC.mint), (first, second)),
        (Pair.of(WIF.mint, SOL.mint), (listing, wif_tick)),
    ]
    assert all(change.market is folded.market for change in folded.changes)
    assert abs(sol_price(folded.market, "raydium") - 151) < Decimal("1e-9")
    assert [r.event for r in folded.rejected] == [bad]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(range(len(DEFAULT.pools))), max_size=8),
       st.integers(-2000, 2000))
def test_folding_snapshots_in_one_batch_or_one_by_one_gives_the_same_market(
    picks: list[int], bps: int
) -> None:
    snapshots = [snapshot_of(DEFAULT.pools[i].repriced(
        DEFAULT.pools[i].spot_price(DEFAULT.pools[i].token_x.mint) * (10_000 + bps) / 10_000),
        f"s{n}", T0) for n, i in enumerate(picks)]
    one_by_one = DEFAULT
    for snapshot in snapshots:
        one_by_one = fold(one_by_one, [snapshot]).market
    assert fold(DEFAULT, snapshots).market == one_by_one


def test_a_pair_key_is_the_same_whichever_way_round_the_mints_come() -> None:
    assert Pair.of(SOL.mint, USDC.mint).key == Pair.of(USDC.mint, SOL.mint).key
    assert tick("1").pair == tick("1", base=USDC, quote=SOL).pair == snapshot_of(
        pool("meteora", SOL, USDC), "s", T0).pair
    assert SOL.mint in Pair.of(SOL.mint, USDC.mint)


# --- the follower, without a broker ------------------------------------------------------------


def record(value: bytes, offset: int = 0, timestamp: int = 0,
           partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic="market.prices", partition=partition, offset=offset,
                          timestamp=timestamp, timestamp_type=0, key=b"k", value=value,
                          checksum=None, serialized_key_size=1, serialized_value_size=len(value),
                          headers=())


@pytest.fixture
def follower() -> MarketFollower:
    # Building a follower connects to nothing: only `run` (or `async with`) does.
    return MarketFollower(Settings.model_validate({}), MarketView(DEFAULT), CODEC)


def test_the_follower_replaces_its_view_and_tells_each_pairs_listeners_once_per_batch(
    follower: MarketFollower,
) -> None:
    seen: list[MarketChange] = []
    follower.subscribe(seen.append)
    follower.apply([record(CODEC.encode_market_event(e)) for e in
                    (tick("150"), tick("151"), wif_listing())])
    assert abs(sol_price(follower.view.current(), "raydium") - 151) < Decimal("1e-9")
    assert [c.pair for c in seen] == [Pair.of(SOL.mint, USDC.mint), Pair.of(WIF.mint, SOL.mint)]
    assert seen[0].market is follower.view.current()
    assert (follower.stats.applied, follower.stats.rejected) == (3, 0)


def test_the_follower_skips_undecodable_and_unabsorbable_records_and_applies_the_rest(
    follower: MarketFollower,
) -> None:
    unknown_pair = tick("1", base=BONK, quote=JUP)
    follower.apply([record(b"not avro"), record(CODEC.encode_market_event(unknown_pair)),
                    record(b""), record(CODEC.encode_market_event(tick("150")))])
    assert abs(sol_price(follower.view.current(), "raydium") - 150) < Decimal("1e-9")
    assert (follower.stats.undecodable, follower.stats.rejected, follower.stats.applied) == (
        2, 1, 1)


def test_a_batch_that_changes_nothing_leaves_the_view_and_the_listeners_alone(
    follower: MarketFollower,
) -> None:
    seen: list[MarketChange] = []
    follower.subscribe(seen.append)
    follower.apply([record(b"junk"), record(CODEC.encode_market_event(tick("1", venue="orca")))])
    assert follower.view.current() is DEFAULT and seen == []


def test_a_failing_listener_does_not_keep_the_others_from_hearing_of_the_change(
    follower: MarketFollower,
) -> None:
    seen: list[Pair] = []

    def broken(change: MarketChange) -> None:
        raise RuntimeError("a bug in a subscriber")

    follower.subscribe(broken)
    follower.subscribe(lambda change: seen.append(change.pair))
    follower.apply([record(CODEC.encode_market_event(tick("150")))])
    assert seen == [Pair.of(SOL.mint, USDC.mint)]


def test_an_unsubscribed_listener_hears_nothing_more(follower: MarketFollower) -> None:
    seen: list[Pair] = []
    unsubscribe = follower.subscribe(lambda change: seen.append(change.pair))
    follower.apply([record(CODEC.encode_market_event(tick("150")))])
    unsubscribe()
    follower.apply([record(CODEC.encode_market_event(tick("151")))])
    assert len(seen) == 1


def test_records_are_interleaved_by_time_without_reordering_a_partition() -> None:
    first = [record(b"a", offset=0, timestamp=5), record(b"b", offset=1, timestamp=1)]
    second = [record(b"c", offset=0, timestamp=3, partition=1)]
    merged = [r.value for r in _in_time_order([first, second])]
    assert merged == [b"c", b"a", b"b"]
