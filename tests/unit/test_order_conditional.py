"""Conditional orders in the decider: limit and sniper orders wait, fire once, can be cancelled
or expire while no transaction of theirs exists, and survive a crash mid-decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.orders_support import execute_order
from domain.orders import (
    LimitTerms,
    CancelOrder,
    CancelRejected,
    Command,
    Event,
    ExecuteOrder,
    ExecutionPolicy,
    ExpiryDue,
    InvalidCommand,
    ObservePrice,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderState,
    OrderStatus,
    OrderTriggered,
    OrderType,
    OrderWaiting,
    PoolTriggerFired,
    PriceObserved,
    PriceReached,
    RouteFound,
    RoutingStarted,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
    TERMINAL_EVENTS,
    TimeInForce,
    Trigger,
    decide,
    fold,
    initial_state,
    is_interrupted,
    timers_of,
    transaction_signature,
)
from domain.orders.ids import expiry_due_id
from domain.quotes import RouteLeg, RoutingDecision
from domain.work import QuoteRoute, work_after

S = OrderStatus
ORDER = "order-1"
SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
EXPIRES = T0 + timedelta(minutes=5)
POLICY = ExecutionPolicy()
STALL_MS = 30_000


def execute(order_type: OrderType = OrderType.LIMIT, **overrides: Any) -> ExecuteOrder:
    fields: dict[str, Any] = dict(
        command_id="cmd-execute", order_id=ORDER, issued_at=T0,
        token_in=SOL, token_out=USDC, token_in_symbol="SOL", token_out_symbol="USDC",
        token_in_decimals=9, token_out_decimals=6, amount_in=1_000_000_000, slippage_bps=50,
    )
    if order_type is OrderType.LIMIT:
        fields["limit_price"] = Decimal("190")
    if order_type is OrderType.SNIPER:
        fields |= dict(trigger=Trigger.LIQUIDITY, min_liquidity_usd=Decimal(50_000),
                       max_price=Decimal("0.0055"))  # at most 0.0055 SOL per USDC
    return execute_order(order_type, **(fields | overrides))


def gtd(order_type: OrderType = OrderType.LIMIT, **overrides: Any) -> ExecuteOrder:
    return execute(order_type, time_in_force=TimeInForce.GTD, expires_at=EXPIRES, **overrides)


def meta(name: str) -> dict[str, Any]:
    return dict(command_id=f"cmd-{name}", order_id=ORDER, issued_at=T0)


def reached(price: str, name: str = "reached") -> PriceReached:
    return PriceReached(**meta(name), observed_price=Decimal(price), market_event_id="tick-9")


def pool_fired(trigger: Trigger = Trigger.LIQUIDITY, *, liquidity: int = 60_000,
               price: str = "185") -> PoolTriggerFired:
    return PoolTriggerFired(**meta(f"pool-{trigger}-{liquidity}-{price}"), trigger=trigger,
                            venue="raydium", liquidity_usd=Decimal(liquidity),
                            observed_price=Decimal(price), market_event_id="listing-1")


def route_found() -> RouteFound:
    leg = RouteLeg(venue="raydium", amount_in=10**9, amount_out=190_000_000, path=(SOL, USDC))
    routed = RoutingDecision(token_in=SOL, token_out=USDC, amount_in=10**9, quotes=(),
                             legs=(leg,), amount_out=190_000_000, reason="only venue")
    return RouteFound(**meta("route"), attempt=1, decision=routed)


def submission() -> SubmissionSucceeded:
    return SubmissionSucceeded(**meta("submitted"), attempt=1,
                               signature=transaction_signature(ORDER, 1), slot=7)


def confirmation() -> SwapConfirmed:
    return SwapConfirmed(**meta("confirmed"), attempt=1, signature=transaction_signature(ORDER, 1),
                         amount_out=189_900_000, slot=8)


def cancel() -> CancelOrder:
    return CancelOrder(**meta("cancel"), reason="changed my mind")


def expiry_due() -> ExpiryDue:
    return ExpiryDue(**meta("expiry"), expires_at=EXPIRES)


class Order:
    """Drives one order as the order agent does: decide, then fold."""

    def __init__(self, *commands: Command) -> None:
        self.state: OrderState = initial_state(ORDER)
        self.history: list[Event] = []
        self.now = T0
        for command in commands:
            self.send(command)

    def send(self, command: Command, *, at: datetime | None = None) -> tuple[Event, ...]:
        self.now = at or self.now
        events = decide(self.state, command, now=self.now, policy=POLICY)
        self.state = fold(events, self.state)
        self.history.extend(events)
        return events


def kinds(events: Sequence[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


# --- waiting ----------------------------------------------------------------------------------


def test_a_limit_order_is_accepted_with_its_terms_and_waits_for_its_price() -> None:
    order = Order()
    events = order.send(gtd())

    assert kinds(events) == ["OrderAccepted", "OrderWaiting"]
    accepted, waiting = events
    assert isinstance(accepted, OrderAccepted) and isinstance(waiting, OrderWaiting)
    assert accepted.terms == gtd().terms  # as given, nothing copied by hand
    assert isinstance(accepted.terms, LimitTerms)
    assert (accepted.terms.limit_price, accepted.terms.time_in_force,
            accepted.terms.expires_at) == (Decimal("190"), TimeInForce.GTD, EXPIRES)
    assert waiting.trigger is Trigger.PRICE
    assert order.state.status is S.WAITING
    assert order.state.terms == accepted.terms


def test_a_sniper_order_waits_for_its_pool_trigger() -> None:
    events = Order().send(execute(OrderType.SNIPER))

    assert isinstance(events[-1], OrderWaiting) and events[-1].trigger is Trigger.LIQUIDITY


def test_a_gtd_order_whose_time_passed_before_it_was_decided_expires_at_once() -> None:
    order = Order()
    events = order.send(gtd(), at=EXPIRES)

    assert kinds(events) == ["OrderAccepted", "OrderExpired"]
    assert order.state.status is S.EXPIRED


# --- limit trigger ----------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["189.99", "0", "189.999999999999999"])
def test_a_price_below_the_limit_fires_nothing(price: str) -> None:
    order = Order(execute())
    assert order.send(reached(price)) == ()
    assert order.state.status is S.WAITING


@pytest.mark.parametrize("price", ["190", "190.000000000000001", "250"])
def test_a_price_at_or_above_the_limit_triggers_and_starts_the_first_attempt(price: str) -> None:
    order = Order(execute())
    events = order.send(reached(price))

    assert kinds(events) == ["OrderTriggered", "RoutingStarted"]
    triggered, started = events
    assert isinstance(triggered, OrderTriggered) and isinstance(started, RoutingStarted)
    assert (triggered.trigger, triggered.observed_price) == (Trigger.PRICE, Decimal(price))
    assert triggered.market_event_id == "tick-9" and started.attempt == 1
    assert order.state.status is S.ROUTING and order.state.triggered_price == Decimal(price)
    assert work_after(order.state, events) == (QuoteRoute(ORDER, 1, SOL, USDC, 1_000_000_000),)


def test_a_limit_order_triggers_exactly_once_however_often_it_is_reported() -> None:
    order = Order(execute(), reached("191"))
    assert order.send(reached("192", "again")) == ()
    assert order.send(reached("191")) == ()
    assert kinds(order.history).count("OrderTriggered") == 1


def test_a_pool_report_does_not_fire_a_limit_order_nor_a_price_report_a_sniper() -> None:
    assert Order(execute()).send(pool_fired(price="500")) == ()
    assert Order(execute(OrderType.SNIPER)).send(reached("500")) == ()


# --- sniper trigger ---------------------------------------------------------------------------


def test_a_liquidity_sniper_fires_at_its_threshold_within_its_max_price() -> None:
    order = Order(execute(OrderType.SNIPER))
    events = order.send(pool_fired(liquidity=50_000, price="185"))  # 1/185 = 0.0054 <= 0.0055

    assert kinds(events) == ["OrderTriggered", "RoutingStarted"]
    triggered = events[0]
    assert isinstance(triggered, OrderTriggered)
    assert (triggered.trigger, triggered.venue, triggered.liquidity_usd) == (
        Trigger.LIQUIDITY, "raydium", Decimal(50_000))


@pytest.mark.parametrize(
    ("report", "why"),
    [
        (pool_fired(liquidity=49_999), "below the threshold"),
        (pool_fired(price="181"), "too expensive: 1/181 = 0.005525 SOL per USDC > 0.0055"),
        (pool_fired(Trigger.POOL_CREATED), "another trigger than the order's"),
    ],
)
def test_a_sniper_report_that_misses_its_terms_fires_nothing(
    report: PoolTriggerFired, why: str
) -> None:
    assert Order(execute(OrderType.SNIPER)).send(report) == (), why


def test_a_listing_sniper_without_a_guard_fires_on_any_listing() -> None:
    order = Order(execute(OrderType.SNIPER, trigger=Trigger.POOL_CREATED, min_liquidity_usd=None,
                          max_price=None))
    assert kinds(order.send(pool_fired(Trigger.POOL_CREATED, liquidity=1, price="0.1"))) == [
        "OrderTriggered", "RoutingStarted"]


# --- best price -------------------------------------------------------------------------------


def test_a_new_best_price_is_observed_once_and_only_while_waiting() -> None:
    order = Order(execute())
    observe = ObservePrice(**meta("observe"), best_price=Decimal("186.2"))

    events = order.send(observe, at=T0 + timedelta(seconds=5))
    assert kinds(events) == ["PriceObserved"]
    assert isinstance(events[0], PriceObserved) and events[0].best_price == Decimal("186.2")
    assert (order.state.best_price, order.state.best_price_at) == (
        Decimal("186.2"), T0 + timedelta(seconds=5))
    assert order.send(observe) == ()  # the same price again: no new fact
    order.send(reached("190"))
    assert order.send(ObservePrice(**meta("later"), best_price=Decimal("191"))) == ()


# --- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [[], [reached("190")]],
    ids=["waiting", "triggered-and-routing"],
)
def test_a_cancel_ends_a_waiting_or_routing_order(before: list[Command]) -> None:
    order = Order(execute(), *before)
    assert kinds(order.send(cancel())) == ["OrderCancelled"]
    assert order.send(reached("200", "late")) == ()  # a trigger after the cancel: nothing


def test_a_cancel_once_the_transaction_exists_is_rejected_and_the_order_goes_on() -> None:
    order = Order(execute(), reached("190"), route_found())
    assert kinds(order.send(cancel())) == ["CancelRejected"]
    order.send(submission())
    assert kinds(order.send(confirmation())) == ["OrderConfirmed"]


# --- expiry -----------------------------------------------------------------------------------


def test_a_gtd_order_expires_at_its_time_and_not_before() -> None:
    order = Order(gtd())
    assert order.send(expiry_due(), at=EXPIRES - timedelta(microseconds=1)) == ()
    events = order.send(expiry_due(), at=EXPIRES)

    assert kinds(events) == ["OrderExpired"]
    assert isinstance(events[0], OrderExpired) and events[0].expires_at == EXPIRES
    assert order.send(reached("200"), at=EXPIRES) == ()


def test_an_order_executing_when_its_time_runs_out_is_seen_through() -> None:
    order = Order(gtd(), reached("190"), route_found())
    assert order.send(expiry_due(), at=EXPIRES) == ()
    order.send(submission())
    assert isinstance(order.send(confirmation())[-1], OrderConfirmed)


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(days=1)])
@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.SNIPER])
def test_a_trigger_after_a_gtd_order_expired_expires_it_instead_of_trading(
    order_type: OrderType, late: timedelta
) -> None:
    # Issue 10: the time in force has ended, so no trade may start, even if the ExpiryDue
    # timer has not been delivered yet (a crash, a slow timer wheel).
    report = reached("200") if order_type is OrderType.LIMIT else pool_fired()
    order = Order(gtd(order_type))
    events = order.send(report, at=EXPIRES + late)

    assert kinds(events) == ["OrderExpired"]
    assert order.state.status is OrderStatus.EXPIRED
    assert order.send(expiry_due(), at=EXPIRES + late) == ()  # the timer then finds it ended


def test_a_trigger_just_before_the_expiry_still_fires() -> None:
    events = Order(gtd()).send(reached("200"), at=EXPIRES - timedelta(microseconds=1))
    assert kinds(events) == ["OrderTriggered", "RoutingStarted"]


def test_a_gtc_order_never_expires() -> None:
    assert Order(execute()).send(expiry_due(), at=EXPIRES + timedelta(days=365)) == ()


# --- timers -----------------------------------------------------------------------------------


def test_a_waiting_gtd_order_has_one_timer_its_expiry_and_a_gtc_one_none() -> None:
    (timer,) = timers_of(Order(gtd()).state, stall_timeout_ms=STALL_MS)

    assert timer.due_at == EXPIRES and timer.delay_ms == 5 * 60 * 1000
    assert isinstance(timer.command, ExpiryDue)
    assert timer.command.command_id == expiry_due_id(ORDER)
    assert timers_of(Order(execute()).state, stall_timeout_ms=STALL_MS) == ()


def test_a_triggered_gtd_order_keeps_its_expiry_until_its_transaction_exists() -> None:
    order = Order(gtd(), reached("190"))
    routing = {type(t.command) for t in timers_of(order.state, stall_timeout_ms=STALL_MS)}
    order.send(route_found())
    building = {type(t.command) for t in timers_of(order.state, stall_timeout_ms=STALL_MS)}

    assert routing == {StallCheck, ExpiryDue}
    assert building == {StallCheck}


# --- a crash in the middle of a decision ------------------------------------------------------


def test_a_crash_between_triggered_and_routing_started_is_finished_by_the_redelivery() -> None:
    order = Order(execute())
    triggered, started = decide(order.state, reached("190"), now=T0, policy=POLICY)
    half = fold([triggered], order.state)  # only OrderTriggered was appended

    assert half.status is S.ROUTING and is_interrupted(half)
    assert decide(half, reached("190"), now=T0, policy=POLICY) == (started,)
    (stall,) = [t.command for t in timers_of(half, stall_timeout_ms=STALL_MS)]
    (woken,) = decide(half, stall, now=T0, policy=POLICY)  # the watchdog caused this one
    assert isinstance(woken, RoutingStarted) and (woken.event_id, woken.attempt) == (
        started.event_id, 1)


def test_a_crash_after_accepting_a_limit_order_is_finished_as_waiting() -> None:
    accepted, waiting = decide(initial_state(ORDER), execute(), now=T0, policy=POLICY)
    half = fold([accepted])

    assert decide(half, execute(), now=T0, policy=POLICY) == (waiting,)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("order_type", "term"), [
    (OrderType.LIMIT, {"max_price": Decimal(1)}),
    (OrderType.SNIPER, {"limit_price": Decimal(190)}),
    (OrderType.MARKET, {"limit_price": Decimal(190)}),
    (OrderType.MARKET, {"time_in_force": TimeInForce.GTD, "expires_at": EXPIRES}),
])
def test_a_term_an_order_type_does_not_take_cannot_even_be_written(
    order_type: OrderType, term: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        execute(order_type, **term)


@pytest.mark.parametrize(
    "command",
    [
        execute(limit_price=None),
        execute(limit_price=Decimal(0)),
        execute(limit_price=Decimal(-1)),
        execute(limit_price=Decimal("NaN")),
        execute(limit_price=Decimal("1.234567890123456789")),  # 19 significant digits
        execute(OrderType.SNIPER, trigger=None),
        execute(OrderType.SNIPER, trigger=Trigger.PRICE),
        execute(OrderType.SNIPER, min_liquidity_usd=None),
        execute(OrderType.SNIPER, min_liquidity_usd=Decimal(-1)),
        execute(OrderType.SNIPER, max_price=Decimal(0)),
        execute(time_in_force=TimeInForce.GTD),
        execute(expires_at=EXPIRES),
        execute(time_in_force=TimeInForce.GTD, expires_at=datetime(2025, 3, 1, 12, 5)),
    ],
    ids=lambda c: f"{c.order_type}",
)
def test_conditional_terms_the_edge_should_have_rejected_are_errors(
    command: ExecuteOrder,
) -> None:
    with pytest.raises(InvalidCommand):
        decide(initial_state(ORDER), command, now=T0, policy=POLICY)


# --- races: one writer, one end ---------------------------------------------------------------


RACERS = ("cancel", "expiry", "trigger", "route", "submitted", "confirmed")
COMMANDS: dict[str, Command] = {
    "cancel": cancel(), "expiry": expiry_due(), "trigger": reached("195"),
    "route": route_found(), "submitted": submission(), "confirmed": confirmation(),
}


def expected_end(sequence: list[str]) -> str | None:
    """The rules restated as a tiny model: a cancel or an expiry wins while no transaction
    exists (waiting, routing); once it does, the swap is seen through."""
    phase = "waiting"
    for racer in sequence:
        if racer == "trigger" and phase == "waiting":
            return "OrderExpired"  # the expiry is due throughout: a late trigger expires it
        elif racer == "route" and phase == "routing":
            phase = "building"
        elif racer == "submitted" and phase == "building":
            phase = "submitted"
        elif racer == "confirmed" and phase in ("building", "submitted"):
            return "OrderConfirmed"
        elif racer in ("cancel", "expiry") and phase in ("waiting", "routing"):
            return "OrderCancelled" if racer == "cancel" else "OrderExpired"
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(RACERS), min_size=1, max_size=12))
def test_a_cancel_racing_a_trigger_an_expiry_or_the_execution_ends_the_order_once(
    sequence: list[str],
) -> None:
    order = Order(gtd())
    for racer in sequence:
        order.send(COMMANDS[racer], at=EXPIRES)  # the expiry is due throughout

    ends = [event for event in order.history if isinstance(event, TERMINAL_EVENTS)]
    expected = expected_end(sequence)
    assert kinds(ends) == ([] if expected is None else [expected])
    assert not ends or order.history[-1] is ends[0]
    assert [event.seq for event in order.history] == list(range(1, len(order.history) + 1))
    rejected = [event for event in order.history if isinstance(event, CancelRejected)]
    assert len(rejected) <= 1  # one answer per attempt, however often the cancel comes
    assert not any(isinstance(event, OrderCancelled) for event in order.history) or (
        expected == "OrderCancelled")
