"""Property tests: whatever arrives, in whatever order, the order's history stays sound.

Inputs are drawn against the current state, so most fit (the order makes progress)
while many are stale, duplicated, out of order or invalid, as at-least-once delivery
makes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.orders_support import execute_order
from domain.orders import (
    AttemptFailed,
    AttemptStage,
    CancelOrder,
    Command,
    Event,
    ExecuteOrder,
    ExecutionPolicy,
    ExpiryDue,
    InvalidCommand,
    ObservePrice,
    OrderState,
    OrderStatus,
    MarketTerms,
    OrderType,
    PoolTriggerFired,
    PriceReached,
    RetryDue,
    RouteFound,
    RouteNotFound,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
    TERMINAL,
    TimeInForce,
    Trigger,
    awaits_stage,
    decide,
    evolve,
    executed_price,
    fold,
    initial_state,
    is_interrupted,
    is_terminal,
    timers_after,
    timers_of,
    transaction_signature,
)
from domain.quotes import RouteLeg, RoutingDecision

ORDER = "order-1"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
POLICY = ExecutionPolicy()
ENDINGS = ("OrderConfirmed", "OrderFailed", "OrderCancelled", "OrderExpired")
PRICES = [Decimal(p) for p in ("180", "185", "189.99", "190", "190.01", "250")]


def decision(amount_out: int) -> RoutingDecision:
    leg = RouteLeg(venue="meteora", amount_in=10**9, amount_out=amount_out, path=("in", "out"))
    return RoutingDecision(
        token_in="in", token_out="out", amount_in=10**9, quotes=(), legs=(leg,),
        amount_out=amount_out, reason="r",
    )


# Stage reports and timers are drawn more often than the edge commands: they drive the
# order forward, while a cancel would end most runs early.
KINDS = (
    "execute",
    "cancel",
    *("route", "no_route", "submitted", "failed", "confirmed", "retry_due") * 3,
    "stall_check",
    *("price_reached", "pool_fired", "observe"),
    "expiry_due",
)


@st.composite
def inputs(draw: st.DrawFn, state: OrderState, step: int) -> Command:
    """One input for `state`: about half fit it, the rest are stale, early or invalid."""
    meta: dict[str, Any] = dict(command_id=f"cmd-{step}", order_id=ORDER, issued_at=T0)
    kind = draw(st.sampled_from(KINDS))
    if state.status is None and draw(st.booleans()):
        kind = "execute"  # nothing but an ExecuteOrder gets a new order going
    if state.status is OrderStatus.WAITING and draw(st.booleans()):
        kind = draw(st.sampled_from(["price_reached", "pool_fired", "observe"]))
    attempt = draw(st.one_of(st.just(state.attempt), st.integers(0, 4)))
    if kind == "execute":
        return draw(executes(meta))
    if kind == "cancel":
        return CancelOrder(**meta, reason=None)
    if kind == "price_reached":
        return PriceReached(**meta, observed_price=draw(st.sampled_from(PRICES)))
    if kind == "pool_fired":
        return PoolTriggerFired(
            **meta, trigger=draw(st.sampled_from(Trigger)), venue="raydium",
            liquidity_usd=draw(st.sampled_from([Decimal(0), Decimal(50_000)])),
            observed_price=draw(st.sampled_from(PRICES)),
        )
    if kind == "observe":
        return ObservePrice(**meta, best_price=draw(st.sampled_from(PRICES)))
    if kind == "expiry_due":
        return ExpiryDue(**meta, expires_at=T0 + timedelta(seconds=2))
    if kind == "route":
        amount_out = draw(st.sampled_from([0, *[277_500_000] * 9]))
        return RouteFound(**meta, attempt=attempt, decision=decision(amount_out))
    if kind in ("no_route", "failed"):
        transient = draw(st.sampled_from([True, True, True, False]))
        failure: dict[str, Any] = dict(error_code="e", message="m", transient=transient)
        if kind == "no_route":
            return RouteNotFound(**meta, attempt=attempt, **failure)
        stage = draw(st.sampled_from(AttemptStage))
        return AttemptFailed(**meta, attempt=attempt, stage=stage, **failure)
    if kind in ("submitted", "confirmed"):
        signature = draw(st.sampled_from([transaction_signature(ORDER, attempt)] * 3 + ["x"]))
        if kind == "submitted":
            return SubmissionSucceeded(**meta, attempt=attempt, signature=signature, slot=step)
        amount_out = draw(st.integers(0, 10**12))
        return SwapConfirmed(
            **meta, attempt=attempt, signature=signature, amount_out=amount_out, slot=step
        )
    if kind == "retry_due":
        retry = draw(st.sampled_from([state.retry_pending or 0] * 3 + [attempt]))
        return RetryDue(**meta, attempt=retry)
    return StallCheck(**meta, stalled_seq=draw(st.one_of(st.just(state.seq), st.integers(0, 30))))


@st.composite
def executes(draw: st.DrawFn, meta: dict[str, Any]) -> ExecuteOrder:
    """Market, limit and sniper orders, mostly well-formed, some GTD (expiring within a run)."""
    # The single-swap machine (twap/dca parents have their own: tests/unit/test_parent_orders.py).
    single = [OrderType.MARKET, OrderType.LIMIT, OrderType.SNIPER]
    order_type = draw(st.sampled_from([OrderType.MARKET] * 2 + single))
    conditions: dict[str, Any] = {}
    if order_type is OrderType.LIMIT:  # sometimes malformed: without its price
        conditions["limit_price"] = Decimal("190") if draw(st.integers(0, 5)) else None
    if order_type is OrderType.SNIPER:
        conditions["trigger"] = None  # sometimes malformed: without its trigger
    if order_type is OrderType.SNIPER and draw(st.integers(0, 5)):
        conditions["trigger"] = draw(st.sampled_from([Trigger.POOL_CREATED, Trigger.LIQUIDITY]))
        conditions["min_liquidity_usd"] = Decimal(10_000)
        conditions["max_price"] = draw(st.sampled_from([None, Decimal("0.0053")]))
    if order_type is not OrderType.MARKET and draw(st.booleans()):
        conditions["time_in_force"] = TimeInForce.GTD
        conditions["expires_at"] = T0 + timedelta(milliseconds=draw(st.integers(0, 6_000)))
    return execute_order(
        order_type, **meta, token_in="in", token_out="out",
        token_in_symbol="IN", token_out_symbol="OUT", token_in_decimals=9,
        token_out_decimals=6, amount_in=10**9, slippage_bps=draw(st.integers(-1, 10_001)),
        **conditions,
    )


def waits_only_for_the_market(state: OrderState) -> bool:
    """A waiting GTC order has no timer: a market event or a cancel wakes it."""
    return state.status is OrderStatus.WAITING and (
        state.terms is None or state.terms.deadline is None
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_sequence_of_inputs_yields_a_contiguous_history_with_at_most_one_end(
    data: st.DataObject,
) -> None:
    state = initial_state(ORDER)
    history: list[Event] = []
    for step in range(data.draw(st.integers(1, 40), label="steps")):
        command = data.draw(inputs(state, step), label=f"input {step}")
        now = T0 + timedelta(milliseconds=250 * step)
        try:
            events = decide(state, command, now=now, policy=POLICY)
        except InvalidCommand:
            assert isinstance(command, ExecuteOrder) and state.status is None
            continue
        if is_terminal(state):
            assert events == (), "nothing is decided after a terminal event"
        check_a_crash_mid_decision_is_recovered(state, command, events, now)
        for new in events:
            state = evolve(state, new)  # never raises on what decide emits
        history.extend(events)
        assert not is_interrupted(state)
        if events:
            # Redelivery of the same input decides nothing new.
            assert decide(state, command, now=now, policy=POLICY) == ()
            # A live order always has a timer that will wake it up (or waits for the market).
            timers = timers_after(state, events, stall_timeout_ms=30_000)
            assert bool(timers) == (not is_terminal(state) and not waits_only_for_the_market(state))
            assert awaits_stage(state) == any(isinstance(t.command, StallCheck) for t in timers)

    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert len({e.event_id for e in history}) == len(history)
    ends = [i for i, e in enumerate(history) if type(e).__name__ in ENDINGS]
    assert ends in ([], [len(history) - 1])
    assert (state.status in TERMINAL) == bool(ends)
    assert fold(history, initial_state(ORDER)) == state
    event(f"ended {state.status}")
    event(f"triggered: {any(type(e).__name__ == 'OrderTriggered' for e in history)}")
    event(f"reached attempt {state.attempt}")


def check_a_crash_mid_decision_is_recovered(
    state: OrderState, command: Command, events: tuple[Event, ...], now: datetime
) -> None:
    """If only the first k events of a decision were appended before a crash, redelivering
    the command decides exactly the rest, and the watchdog is armed and acts."""
    for k in range(1, len(events)):
        partial = fold(events[:k], state)
        assert decide(partial, command, now=now, policy=POLICY) == events[k:]
        timers = timers_of(partial, stall_timeout_ms=1)
        (stall,) = [timer.command for timer in timers if isinstance(timer.command, StallCheck)]
        woken = decide(partial, stall, now=now, policy=POLICY)
        assert woken
        if is_interrupted(partial):
            assert [type(e) for e in woken] == [type(e) for e in events[k:]]


@given(
    amount_in=st.integers(1, 10**18),
    amount_out=st.integers(0, 10**18),
    decimals=st.tuples(st.integers(0, 18), st.integers(0, 18)),
)
def test_the_executed_price_is_exact_to_28_digits(
    amount_in: int, amount_out: int, decimals: tuple[int, int]
) -> None:
    terms = MarketTerms(
        token_in="in", token_out="out", token_in_symbol="IN",
        token_out_symbol="OUT", token_in_decimals=decimals[0], token_out_decimals=decimals[1],
        amount_in=amount_in, slippage_bps=1, client_order_id=None,
    )
    price = executed_price(
        terms.amount_in, amount_out, decimals_in=decimals[0], decimals_out=decimals[1]
    )
    expected = (Decimal(amount_out) / 10 ** decimals[1]) / (Decimal(amount_in) / 10 ** decimals[0])
    assert abs(price - expected) <= abs(expected) * Decimal("1e-26")
