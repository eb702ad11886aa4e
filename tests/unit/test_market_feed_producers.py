"""The feed's two sources of market events: the seeded random walk and the scripted file."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from aiokafka.structs import RecordMetadata
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import Market
from domain.market_events import (
    LiquidityChanged,
    MarketEvent,
    PoolCreated,
    PoolSnapshot,
    PriceTick,
    fold,
    snapshot_of,
)
from domain.tokens import SOL, USDC, Token, TokenRegistry
from domain.venues.raydium import RaydiumPool
from producers.publisher import MarketPublisher, topic_of
from producers.random_walk import (
    MAX_LISTINGS,
    Walk,
    WalkConfig,
    _move_bps,
    liquidity_usd,
)
from producers.script import ScriptedEvent, ScriptError, parse_script, play
from oee.settings import Topics
from schemas.codec import Codec

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
REGISTRY = TokenRegistry.default()
CALM = WalkConfig(volatility_bps=10, listing_rate=0.0, liquidity_rate=0.0)
BUSY = WalkConfig(volatility_bps=25, listing_rate=0.5, liquidity_rate=0.5)


def counter(prefix: str = "e") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def walk(seed: int, steps: int, config: WalkConfig = BUSY) -> tuple[Walk, list[MarketEvent]]:
    rng, new_id, current = random.Random(seed), counter(), Walk(Market.default(seed))
    published: list[MarketEvent] = []
    for step in range(steps):
        current, events = current.step(rng, config, T0 + timedelta(seconds=step), new_id)
        published.extend(events)
    return current, published


# --- the random walk --------------------------------------------------------------------------


def test_one_seed_replays_one_walk_event_for_event() -> None:
    assert walk(7, 30) == walk(7, 30)
    assert walk(7, 30)[1] != walk(8, 30)[1]


def test_every_step_publishes_a_snapshot_of_every_pool_of_the_walk() -> None:
    after, events = Walk(Market.default(1)).step(random.Random(1), CALM, T0, counter())
    assert all(isinstance(event, PoolSnapshot) for event in events)
    assert [e.pool() for e in events if isinstance(e, PoolSnapshot)] == list(after.market.pools)
    assert after.market != Market.default(1)  # the prices moved


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_a_follower_folding_the_walks_events_ends_with_the_walks_market(seed: int) -> None:
    final, events = walk(seed, 12)
    followed = fold(Market.default(seed), events).market
    assert followed.pools == final.market.pools


def test_listings_are_new_tokens_against_sol_or_usdc_and_stop_at_the_cap() -> None:
    listing = WalkConfig(volatility_bps=10, listing_rate=1.0, liquidity_rate=0.0)
    final, events = walk(3, MAX_LISTINGS + 5, listing)
    created = [e for e in events if isinstance(e, PoolCreated)]
    assert len(created) == final.listings == MAX_LISTINGS
    assert len({e.token_x.mint for e in created}) == MAX_LISTINGS
    default_mints = {token.mint for token in REGISTRY}
    for event in created:
        assert event.token_x.mint not in default_mints
        assert event.token_y in (SOL, USDC) and event.venue == "raydium"
        assert Decimal(2_000) <= event.liquidity_usd <= Decimal(60_000)


def test_a_liquidity_change_reports_the_depth_before_and_after_at_the_same_price() -> None:
    config = WalkConfig(volatility_bps=0, listing_rate=0.0, liquidity_rate=1.0)
    start = Walk(Market.default(5))
    after, events = start.step(random.Random(5), config, T0, counter())
    (change,) = [e for e in events if isinstance(e, LiquidityChanged)]
    before = start.market.pool(change.venue, change.token_x.mint, change.token_y.mint)
    assert before is not None
    moved = change.pool()
    assert change.liquidity_usd == liquidity_usd(moved, after.market)
    assert change.previous_liquidity_usd != change.liquidity_usd
    x = before.token_x.mint
    assert abs(moved.spot_price(x) / before.spot_price(x) - 1) < Decimal("0.001")


def test_the_liquidity_of_the_default_pools_is_their_depth_in_usd() -> None:
    market = Market.default()
    raydium = market.pool("raydium", SOL.mint, USDC.mint)
    meteora = market.pool("meteora", SOL.mint, USDC.mint)
    assert raydium is not None and meteora is not None
    assert abs(liquidity_usd(raydium, market) / 18_500_000 - 1) < Decimal("0.0001")
    assert abs(liquidity_usd(meteora, market) / (801 * 2_000) - 1) < Decimal("0.0001")


def test_a_deposit_and_the_withdrawal_of_the_same_step_cancel_out() -> None:
    pool = Market.default().pool("raydium", SOL.mint, USDC.mint)
    assert isinstance(pool, RaydiumPool)
    there_and_back = pool.scaled(2_500).scaled(-(2_500 * 10_000 // 12_500))
    assert isinstance(there_and_back, RaydiumPool)
    assert abs(there_and_back.reserve_x - pool.reserve_x) <= 1


@given(st.integers(0, 2**32))
def test_depth_outside_the_band_is_steered_back(seed: int) -> None:
    rng = random.Random(seed)
    assert _move_bps(rng, Decimal(10)) > 0
    assert _move_bps(rng, Decimal(10**9)) < 0


# --- scripts ------------------------------------------------------------------------------------

SCRIPT = """
# a limit order's price path
{"atMs": 0, "topic": "prices", "type": "PriceTick", "venue": "raydium", "baseMint": "SOL", "quoteMint": "USDC", "price": "150"}
{"atMs": 20, "type": "PoolCreated", "venue": "raydium", "tokenX": {"symbol": "WIF", "mint": "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", "decimals": 6}, "tokenY": "SOL", "state": {"type": "ConstantProductState", "reserveX": "1000000000000", "reserveY": 54054054054, "feeNumerator": 25, "feeDenominator": 10000}, "liquidityUsd": "20000"}

{"atMs": 0, "type": "PriceTick", "baseMint": "SOL", "quoteMint": "USDC", "price": 150.5, "eventId": "mine", "occurredAt": "2025-01-01T00:00:00+00:00"}
"""


def test_a_script_is_read_in_timetable_order_with_symbols_resolved() -> None:
    first, second, third = parse_script(SCRIPT, REGISTRY, T0, counter("s"))
    assert [s.at_ms for s in (first, second, third)] == [0, 0, 20]
    assert first.event == PriceTick(event_id="s1", occurred_at=T0, venue="raydium",
                                    base_mint=SOL.mint, quote_mint=USDC.mint,
                                    price=Decimal("150"))
    assert first.stamp_when_played and not second.stamp_when_played
    assert second.event == PriceTick(event_id="mine", occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
                                     venue=None, base_mint=SOL.mint, quote_mint=USDC.mint,
                                     price=Decimal("150.5"))  # exactly: parsed as a Decimal
    created = third.event
    assert isinstance(created, PoolCreated) and created.token_y == SOL
    assert created.token_x.symbol == "WIF" and created.liquidity_usd == 20_000
    assert fold(Market.default(), [created]).rejected == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"atMs": 0, "type": "PriceTick"', "line 1: not JSON"),
        ('{"atMs": 0, "type": "Trade"}', '"type" must be one of'),
        ('{"type": "PriceTick"}', '"atMs" must be a non-negative integer'),
        ('{"atMs": 0, "topic": "pools", "type": "PriceTick", "baseMint": "SOL", '
         '"quoteMint": "USDC", "price": "1"}', 'PriceTick goes to "prices"'),
        ('{"atMs": 0, "type": "PriceTick", "baseMint": "SOL", "price": "1"}',
         "missing ['quoteMint']"),
        ('{"atMs": 0, "type": "PriceTick", "baseMint": "SOL", "quoteMint": "USDC", '
         '"price": "1", "size": 3}', "unknown field(s) ['size']"),
        ('{"atMs": 0, "type": "PriceTick", "baseMint": "SOL", "quoteMint": "USDC", '
         '"price": "5_000"}', "PriceTick.price: expected a decimal string"),
        ('{"atMs": 0, "type": "PoolCreated", "venue": "raydium", "tokenX": "NOPE", '
         '"tokenY": "SOL", "state": {}, "liquidityUsd": "1"}', "unknown token 'NOPE'"),
        ('{"atMs": 0, "type": "PoolCreated", "venue": "raydium", "tokenX": "USDC", '
         '"tokenY": "SOL", "state": {"type": "Orderbook"}, "liquidityUsd": "1"}',
         "PoolCreated.state: expected an object with \"type\" one of"),
    ],
    ids=["not json", "unknown type", "no atMs", "wrong topic", "missing field",
         "unknown field", "sloppy decimal", "unknown token", "unknown curve"],
)
def test_a_bad_script_line_is_refused_with_its_line_and_field(line: str, message: str) -> None:
    with pytest.raises(ScriptError, match="line 1") as refused:
        parse_script(line, REGISTRY, T0, counter())
    assert message in str(refused.value)


class RecordingPublisher:
    def __init__(self) -> None:
        self.batches: list[list[MarketEvent]] = []

    async def send(self, events: Iterable[MarketEvent]) -> list[RecordMetadata]:
        self.batches.append(list(events))
        return []


async def test_playing_a_script_sends_events_due_together_in_one_batch_stamped_when_played(
) -> None:
    script = parse_script(SCRIPT, REGISTRY, T0, counter())
    publisher = RecordingPublisher()
    played_at = datetime(2025, 6, 1, tzinfo=UTC)
    count = await play(script, cast(MarketPublisher, publisher), lambda: played_at)
    assert count == 3
    assert [[e.event_id for e in batch] for batch in publisher.batches] == [["e1", "mine"], ["e2"]]
    first, mine = publisher.batches[0]
    assert first.occurred_at == played_at
    assert mine.occurred_at == datetime(2025, 1, 1, tzinfo=UTC)  # the script's own time


def test_price_events_go_to_the_prices_topic_and_pool_events_to_the_pools_topic() -> None:
    topics = Topics("t.")
    script: tuple[ScriptedEvent, ...] = parse_script(SCRIPT, REGISTRY, T0, counter())
    assert [topic_of(s.event, topics) for s in script] == [
        "t.market.prices", "t.market.prices", "t.market.pools"]
    snapshot = snapshot_of(Market.default().pools[0], "s", T0)
    assert topic_of(snapshot, topics) == "t.market.prices"


def test_every_event_of_a_walk_encodes_with_the_contract() -> None:
    codec = Codec.load()
    _, events = walk(11, 20)
    kinds: set[Any] = set()
    for event in events:
        assert codec.decode_market_event(codec.encode_market_event(event)) == event
        kinds.add(type(event))
    assert kinds == {PoolSnapshot, PoolCreated, LiquidityChanged}


def test_a_resumed_walk_reads_its_references_back_from_the_pools() -> None:
    went, _ = walk(4, 150, WalkConfig(volatility_bps=50, listing_rate=0.2, liquidity_rate=0.0))
    # What a restarted feed has: the pools from Kafka, the seed's references.
    from_kafka = Market(went.market.pools, Market.default().reference_usd)
    resumed = Walk.resumed(from_kafka)
    sol_now = went.market.reference_price(SOL.mint)
    assert sol_now is not None and abs(sol_now / 185 - 1) > Decimal("0.01")  # it went away
    sol = resumed.market.reference_price(SOL.mint)
    assert sol is not None and abs(sol / sol_now - 1) < Decimal("0.005")  # within pool spreads
    assert resumed.market.reference_price(USDC.mint) == 1
    assert resumed.listings == went.listings > 0
    assert resumed.market.pools == went.market.pools


def test_a_rebased_walk_steps_from_the_published_pools_and_keeps_its_own_listing() -> None:
    base, _ = walk(5, 3, CALM)
    traded = base.market.pool("raydium", SOL.mint, USDC.mint)
    assert isinstance(traded, RaydiumPool)
    impact = traded.quote(SOL.mint, 5_000 * 10**9).pool_after  # a big sale moved it
    published = base.market.with_pool(impact)
    fresh = Token("WIF1", "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", 6)
    listed = RaydiumPool.from_price(fresh, SOL, 10**12, Decimal("0.01"))
    own = Walk(base.market.with_pool(listed), base.listings + 1)

    rebased = own.rebased(Market(published.pools, Market.default().reference_usd))

    assert rebased.market.pool("raydium", SOL.mint, USDC.mint) == impact
    assert listed in rebased.market.pools  # not published yet: the walk keeps it
    assert rebased.market.reference_usd == own.market.reference_usd  # its own references
    assert rebased.listings == own.listings
