"""The trigger stage in-process: fed states and market changes, it reports what fired, once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.orders_support import terms_of
from domain.market import Market
from domain.market_events import MarketChange, Pair, PoolCreated, PriceTick, fold, pool_state
from domain.orders import (
    Command,
    ObservePrice,
    OrderState,
    OrderStatus,
    OrderType,
    PoolTriggerFired,
    PriceReached,
    Trigger,
)
from domain.tokens import BONK, SOL, USDC, Token
from domain.venues.raydium import RaydiumPool
from marketdata.view import MarketView
from streams.trigger_stage import TriggerStage
from tests.harness import wait_until

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
WIF = Token("WIF", "WiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiF1", 6)


class Sink:
    """Collects what the stage sends; can be told to fail the next send."""

    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.fail_next = False

    async def __call__(self, command: Command) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker away")
        self.sent.append(command)

    def of(self, kind: type[Command]) -> list[Command]:
        return [command for command in self.sent if isinstance(command, kind)]


def waiting(order_id: str, order_type: OrderType = OrderType.LIMIT, *, limit: str = "190",
            token_in: Token = SOL, token_out: Token = USDC, amount: int = 10**9,
            **terms: object) -> OrderState:
    conditions: dict[str, object] = {"limit_price": Decimal(limit)}
    if order_type is OrderType.SNIPER:
        conditions = {"trigger": Trigger.POOL_CREATED}
    return OrderState(
        order_id=order_id, status=OrderStatus.WAITING, seq=2, correlation_id="c",
        terms=terms_of(order_type, token_in=token_in.mint,
                         token_out=token_out.mint, token_in_symbol=token_in.symbol,
                         token_out_symbol=token_out.symbol, token_in_decimals=token_in.decimals,
                         token_out_decimals=token_out.decimals, amount_in=amount,
                         slippage_bps=50, client_order_id=None,
                         **(conditions | terms)),
        status_history=((OrderStatus.PENDING, T0), (OrderStatus.WAITING, T0)), updated_at=T0,
    )


@pytest.fixture
def view() -> MarketView:
    return MarketView(Market.default())


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def stage(view: MarketView, sink: Sink) -> TriggerStage:
    return TriggerStage(view, sink, lambda: T0, best_price_interval_s=0)


def tick(view: MarketView, stage: TriggerStage, price: str, event_id: str = "tick",
         base: Token = SOL) -> None:
    """What the market follower does with one PriceTick of `base`/USDC."""
    event = PriceTick(event_id=event_id, occurred_at=T0, venue=None, base_mint=base.mint,
                      quote_mint=USDC.mint, price=Decimal(price))
    folded = fold(view.current(), [event])
    view.replace(folded.market)
    for change in folded.changes:
        stage.on_market_change(change)


def list_wif(view: MarketView, stage: TriggerStage) -> PoolCreated:
    pool = RaydiumPool.from_price(WIF, USDC, 10_000_000 * 10**6, Decimal("0.002"))
    event = PoolCreated(event_id="listing", occurred_at=T0, venue="raydium", token_x=WIF,
                        token_y=USDC, state=pool_state(pool), liquidity_usd=Decimal(40_000))
    view.replace(fold(view.current(), [event]).market)
    stage.on_market_change(MarketChange(Pair.of(WIF.mint, USDC.mint), (event,), view.current()))
    return event


async def test_a_new_order_whose_limit_is_already_reached_fires_at_once(
    stage: TriggerStage, sink: Sink
) -> None:
    stage.track(waiting("marketable", limit="150"))
    stage.track(waiting("patient", limit="250"))
    await stage.evaluate()

    (report,) = sink.sent
    assert isinstance(report, PriceReached) and report.order_id == "marketable"
    assert Decimal(150) <= report.observed_price < Decimal(185)


async def test_a_tick_fires_the_orders_it_crosses_once_until_the_writer_answers(
    view: MarketView, stage: TriggerStage, sink: Sink
) -> None:
    stage.track(waiting("a", limit="190"))
    stage.track(waiting("b", limit="250"))
    await stage.evaluate()
    assert sink.sent == []

    tick(view, stage, "192", "tick-1")
    await stage.evaluate()
    tick(view, stage, "193", "tick-2")
    await stage.evaluate()
    (report,) = sink.sent
    assert isinstance(report, PriceReached)
    assert (report.order_id, report.market_event_id) == ("a", "tick-1")

    stage.track(waiting("a", limit="190"), answered=report)  # the writer decided nothing
    tick(view, stage, "194", "tick-3")
    await stage.evaluate()
    assert [c.order_id for c in sink.of(PriceReached)] == ["a", "a"]

    triggered = replace(waiting("a"), status=OrderStatus.ROUTING)
    stage.track(triggered, answered=report)
    assert "a" not in stage.book and "b" in stage.book


async def test_a_listing_fires_a_waiting_sniper_with_the_pool_facts(
    view: MarketView, stage: TriggerStage, sink: Sink
) -> None:
    stage.track(waiting("s", OrderType.SNIPER, token_in=USDC, token_out=WIF, amount=10 * 10**6))
    await stage.evaluate()
    listing = list_wif(view, stage)
    await stage.evaluate()

    (report,) = sink.sent
    assert isinstance(report, PoolTriggerFired)
    assert (report.order_id, report.trigger, report.venue, report.liquidity_usd,
            report.market_event_id) == ("s", Trigger.POOL_CREATED, "raydium", Decimal(40_000),
                                        listing.event_id)
    assert report.observed_price > Decimal(400)  # ~500 WIF per USDC, less fees and impact


async def test_a_sniper_that_joins_after_its_listing_was_seen_still_fires(
    view: MarketView, stage: TriggerStage, sink: Sink
) -> None:
    list_wif(view, stage)  # e.g. replayed while the partition had no owner
    await stage.evaluate()
    stage.track(waiting("s", OrderType.SNIPER, token_in=USDC, token_out=WIF, amount=10 * 10**6))
    await stage.evaluate()

    assert [c.order_id for c in sink.of(PoolTriggerFired)] == ["s"]


async def test_best_prices_are_sent_only_when_they_changed(
    view: MarketView, stage: TriggerStage, sink: Sink
) -> None:
    stage.track(waiting("a", limit="250"))
    assert await stage.observe_prices() == 1
    (observed,) = sink.of(ObservePrice)
    assert isinstance(observed, ObservePrice)
    stage.track(replace(waiting("a", limit="250"), best_price=observed.best_price, seq=3))

    tick(view, stage, "0.00002", base=BONK)  # touches SOL's directions, not SOL/USDC's price
    await stage.evaluate()
    assert await stage.observe_prices() == 0
    tick(view, stage, "186")
    await stage.evaluate()
    assert await stage.observe_prices() == 1
    assert stage.stats.observed == 2


async def test_a_report_that_could_not_be_sent_is_evaluated_again(
    stage: TriggerStage, sink: Sink
) -> None:
    stage.track(waiting("a", limit="150"))
    sink.fail_next = True
    with pytest.raises(ConnectionError):
        await stage.evaluate()
    assert not stage.book.is_fired("a")

    await stage.evaluate()
    assert [c.order_id for c in sink.sent] == ["a"]


async def test_forgotten_orders_are_not_evaluated(view: MarketView, stage: TriggerStage,
                                                  sink: Sink) -> None:
    stage.track(waiting("a", limit="150"))
    stage.forget(["a"])
    tick(view, stage, "200")
    await stage.evaluate()
    assert sink.sent == [] and len(stage.book) == 0


async def test_the_running_stage_fires_on_changes_and_sweeps_best_prices(
    view: MarketView, sink: Sink
) -> None:
    stage = TriggerStage(view, sink, lambda: T0, best_price_interval_s=0.05)
    stage.track(waiting("a", limit="190"))
    task = asyncio.create_task(stage.run())
    try:
        await wait_until(lambda: bool(sink.of(ObservePrice)), 5, "a best price")
        assert sink.of(PriceReached) == []
        tick(view, stage, "195")
        await wait_until(lambda: bool(sink.of(PriceReached)), 5, "the crossing to be reported")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [c.order_id for c in sink.of(PriceReached)] == ["a"]
