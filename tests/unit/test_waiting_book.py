"""The waiting book: a tick evaluates only the orders it could fire, and fires exactly the ones
a brute-force scan of every order would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import Market
from domain.market_events import LiquidityChanged, Pair, PoolCreated, PriceTick, fold, pool_state
from domain.orders import LimitTerms, OrderAccepted, OrderWaiting, Trigger, fold as fold_order
from domain.orders.status import OrderType
from domain.price_bound import price_bound
from domain.tokens import BONK, JUP, MSOL, RAY, SOL, USDC, USDT, Token
from domain.venues.raydium import RaydiumPool
from domain.waiting_book import (
    Direction,
    WaitingBook,
    WaitingLimit,
    WaitingSniper,
    executable_price,
    waiting_of,
)

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
MARKET = Market.default()
SOL_USDC = Direction(SOL.mint, USDC.mint)
WIF = Token("WIF", "WiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiF1", 6)


class CountingPricer:
    """The real pricer, remembering which (direction, amount) it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[Direction, int]] = []

    def __call__(self, market: Market, direction: Direction, amount_in: int) -> Decimal | None:
        self.asked.append((direction, amount_in))
        return executable_price(market, direction, amount_in)


def limit(order_id: str, price: str | Decimal, amount: int = 10**9,
          direction: Direction = SOL_USDC) -> WaitingLimit:
    return WaitingLimit(order_id, direction, amount, Decimal(price))


def ticked(market: Market, price: str, base: Token = SOL, quote: Token = USDC) -> Market:
    tick = PriceTick(event_id="tick", occurred_at=T0, venue=None, base_mint=base.mint,
                     quote_mint=quote.mint, price=Decimal(price))
    return fold(market, [tick]).market


# --- only what a tick could fire is evaluated ------------------------------------------------


def test_a_tick_prices_only_the_orders_whose_limit_is_within_the_bound() -> None:
    pricer = CountingPricer()
    book = WaitingBook(pricer)
    for i in range(1_000):  # limits 150.0 .. 249.9, each order its own size
        book.put(limit(f"o{i:04}", Decimal(1500 + i) / 10, amount=10**9 + i))
    bound = price_bound(MARKET, SOL.mint, USDC.mint)
    assert bound is not None

    result = book.crossings(MARKET, [SOL_USDC])

    candidates = {f"o{i:04}" for i in range(1_000) if Decimal(1500 + i) / 10 <= bound}
    assert result.evaluated == len(candidates) == len(pricer.asked) < 400
    assert {amount - 10**9 for _, amount in pricer.asked} == {int(o[1:]) for o in candidates}
    fired = {fire.order.order_id for fire in result.fires}
    assert fired and fired <= candidates
    for fire in result.fires:
        assert isinstance(fire.order, WaitingLimit)
        assert fire.price >= fire.order.limit_price


def test_orders_of_the_same_size_share_one_route() -> None:
    pricer = CountingPricer()
    book = WaitingBook(pricer)
    for i in range(50):
        book.put(limit(f"o{i}", "150"))

    result = book.crossings(MARKET, [SOL_USDC])

    assert (result.evaluated, len(pricer.asked), len(result.fires)) == (1, 1, 50)


def test_a_tick_that_does_not_reach_a_limit_fires_nothing_and_one_that_does_fires_it() -> None:
    book = WaitingBook()
    book.put(limit("a", "190"))

    assert book.crossings(ticked(MARKET, "189"), [SOL_USDC]).fires == []
    (fire,) = book.crossings(ticked(MARKET, "192"), [SOL_USDC]).fires
    assert fire.order.order_id == "a" and Decimal("190") <= fire.price < Decimal("192")


def test_a_change_of_a_pair_affects_every_direction_sharing_a_token_with_it() -> None:
    book = WaitingBook()
    directions = [SOL_USDC, Direction(USDC.mint, SOL.mint), Direction(BONK.mint, JUP.mint),
                  Direction(RAY.mint, USDT.mint)]
    for i, direction in enumerate(directions):
        book.put(limit(f"o{i}", "1", direction=direction))

    assert set(book.affected([Pair.of(SOL.mint, USDC.mint)])) == set(directions[:2])
    assert set(book.affected([Pair.of(BONK.mint, SOL.mint)])) == set(directions[:3])
    assert book.affected([Pair.of(MSOL.mint, JUP.mint)]) == [directions[2]]


# --- against a brute-force scan ---------------------------------------------------------------

DIRECTIONS = [SOL_USDC, Direction(USDC.mint, SOL.mint), Direction(BONK.mint, JUP.mint),
              Direction(JUP.mint, USDC.mint), Direction(MSOL.mint, USDC.mint),
              Direction(USDT.mint, RAY.mint)]
REFERENCE = {d: executable_price(MARKET, d, _amount) for d, _amount in
             ((d, 10 ** MARKET.token(d.token_in).decimals) for d in DIRECTIONS)}


@st.composite
def books(draw: st.DrawFn) -> list[WaitingLimit]:
    orders = []
    for i in range(draw(st.integers(0, 40))):
        direction = draw(st.sampled_from(DIRECTIONS))
        units = 10 ** MARKET.token(direction.token_in).decimals
        amount = draw(st.sampled_from([units // 100, units, 50 * units, 20_000 * units]))
        reference = REFERENCE[direction]
        assert reference is not None
        permille = draw(st.integers(-60, 30))
        price = (reference * (1000 + permille) / 1000).quantize(reference.scaleb(-6))
        orders.append(limit(f"o{i}", price, amount, direction))
    return orders


@settings(max_examples=100, deadline=None)
@given(orders=books(), seed=st.integers(0, 10_000), fired=st.sets(st.integers(0, 40)))
def test_the_book_fires_exactly_what_a_brute_force_scan_fires(
    orders: list[WaitingLimit], seed: int, fired: set[int]
) -> None:
    market = Market.default(seed)
    pricer = CountingPricer()
    book = WaitingBook(pricer)
    for order in orders:
        book.put(order)
    skipped = {f"o{i}" for i in fired}
    for order_id in skipped:
        book.mark_fired(order_id)

    result = book.crossings(market, book.directions())

    expected = set()
    for order in orders:
        price = executable_price(market, order.direction, order.amount_in)
        if order.order_id not in skipped and price is not None and price >= order.limit_price:
            expected.add((order.order_id, price))
    assert {(fire.order.order_id, fire.price) for fire in result.fires} == expected
    # Nothing above its direction's bound was priced.
    bounds = {d: price_bound(market, d.token_in, d.token_out) for d in DIRECTIONS}
    for direction, amount in pricer.asked:
        bound = bounds[direction]
        assert bound is not None and any(
            o.direction == direction and o.amount_in == amount and o.limit_price <= bound
            for o in orders)


# --- keeping the book current -----------------------------------------------------------------


def test_fired_orders_are_skipped_until_unfired_and_removed_ones_are_gone() -> None:
    book = WaitingBook()
    book.put(limit("a", "150"))
    book.put(limit("b", "150"))
    book.mark_fired("a")
    assert [f.order.order_id for f in book.crossings(MARKET, [SOL_USDC]).fires] == ["b"]
    book.unfire("a")
    book.remove("b")
    assert [f.order.order_id for f in book.crossings(MARKET, [SOL_USDC]).fires] == ["a"]
    book.remove("a")
    assert (len(book), book.directions()) == (0, [])


def test_replacing_an_order_moves_it_and_a_new_best_price_alone_is_not_new() -> None:
    book = WaitingBook()
    assert book.put(limit("a", "300")) is True
    assert book.put(replace(limit("a", "300"), best_price=Decimal("184"))) is False
    assert book.crossings(MARKET, [SOL_USDC]).fires == []
    book.put(limit("a", "150"))
    assert [f.order.order_id for f in book.crossings(MARKET, [SOL_USDC]).fires] == ["a"]
    assert book.limits(SOL_USDC) == [limit("a", "150")]


def test_only_waiting_orders_have_a_book_entry() -> None:
    meta: dict[str, Any] = dict(order_id="o", correlation_id="c", causation_id="c")
    accepted = OrderAccepted(
        event_id="e1", seq=1, occurred_at=T0, **meta, terms=LimitTerms(
            token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
            token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
            amount_in=10**9, slippage_bps=50, client_order_id=None, limit_price=Decimal("190")))
    waiting = OrderWaiting(event_id="e2", seq=2, occurred_at=T0, **meta, trigger=Trigger.PRICE)

    assert waiting_of(fold_order([accepted])) is None
    assert waiting_of(fold_order([accepted, waiting])) == WaitingLimit(
        "o", SOL_USDC, 10**9, Decimal("190"))


# --- snipers ----------------------------------------------------------------------------------


def listing(liquidity: int, *, at: datetime = T0, token: Token = WIF) -> tuple[Market, PoolCreated]:
    pool = RaydiumPool.from_price(token, USDC, 10_000_000 * 10**token.decimals, Decimal("0.002"))
    event = PoolCreated(event_id="listing", occurred_at=at, venue="raydium", token_x=token,
                        token_y=USDC, state=pool_state(pool), liquidity_usd=Decimal(liquidity))
    return fold(MARKET, [event]).market, event


def sniper(order_id: str, trigger: Trigger, minimum: int | None = None,
           max_price: str | None = None, *, accepted_at: datetime = T0 - timedelta(seconds=1),
           decimals: int = 6) -> WaitingSniper:
    return WaitingSniper(order_id, Direction(USDC.mint, WIF.mint), 10 * 10**6, trigger,
                         None if minimum is None else Decimal(minimum),
                         None if max_price is None else Decimal(max_price), decimals, accepted_at)


def test_a_listing_fires_the_snipers_of_its_token_that_it_satisfies() -> None:
    book = WaitingBook()
    book.put(sniper("any-listing", Trigger.POOL_CREATED))
    book.put(sniper("deep-listing", Trigger.POOL_CREATED, minimum=50_000))
    book.put(sniper("liquidity", Trigger.LIQUIDITY, minimum=20_000))
    book.put(sniper("cheap-only", Trigger.POOL_CREATED, max_price="0.001"))  # it costs ~0.002
    book.put(sniper("placed-later", Trigger.POOL_CREATED, accepted_at=T0 + timedelta(seconds=1)))
    book.put(sniper("other-decimals", Trigger.POOL_CREATED, decimals=9))
    market, event = listing(40_000)

    fires = book.sniped(market, event)

    assert [f.order.order_id for f in fires] == ["any-listing", "liquidity"]
    for fire in fires:
        assert fire.event is event and Decimal(400) < fire.price < Decimal(500)  # ~500 WIF/USDC


def test_a_liquidity_sniper_fires_when_liquidity_crosses_its_threshold_upwards() -> None:
    book = WaitingBook()
    book.put(sniper("s", Trigger.LIQUIDITY, minimum=50_000))
    market, created = listing(10_000)
    assert book.sniped(market, created) == []

    def change(previous: int, now: int) -> LiquidityChanged:
        return LiquidityChanged(event_id=f"lc-{now}", occurred_at=T0, venue="raydium",
                                token_x=WIF, token_y=USDC, state=created.state,
                                liquidity_usd=Decimal(now),
                                previous_liquidity_usd=Decimal(previous))

    assert book.sniped(market, change(10_000, 30_000)) == []
    assert [f.order.order_id for f in book.sniped(market, change(30_000, 60_000))] == ["s"]
    assert book.sniped(market, change(60_000, 70_000)) == []  # already above: no crossing


def test_a_pool_event_of_another_token_or_a_fired_sniper_fires_nothing() -> None:
    book = WaitingBook()
    book.put(sniper("s", Trigger.POOL_CREATED))
    other = Token("POPCAT", "PoPCaTPoPCaTPoPCaTPoPCaTPoPCaTPoPCaTPoPCa1", 9)
    market, event = listing(40_000, token=other)
    assert book.sniped(market, event) == []
    market, event = listing(40_000)
    book.mark_fired("s")
    assert book.sniped(market, event) == []


@pytest.mark.parametrize("token_in", [SOL, USDT])
def test_a_sniper_routes_through_any_venue_path_to_the_listed_token(token_in: Token) -> None:
    book = WaitingBook()
    book.put(replace(sniper("s", Trigger.POOL_CREATED),
                     direction=Direction(token_in.mint, WIF.mint), amount_in=10**token_in.decimals))
    market, event = listing(40_000)
    (fire,) = book.sniped(market, event)  # via USDC on raydium: SOL/USDC, USDC/USDT pools
    assert fire.price > 0
