"""Scenarios of the order decider: what each input decides in each situation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest

from tests.orders_support import execute_order
from domain.orders import (
    AttemptFailed,
    AttemptStage,
    CancelOrder,
    CancelRejected,
    Command,
    Event,
    ExecuteOrder,
    ExecutionAttemptFailed,
    ExecutionPolicy,
    InvalidCommand,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderFailed,
    OrderMismatch,
    OrderRedriven,
    OrderState,
    OrderStatus,
    OrderType,
    RetryDue,
    RetryScheduled,
    RouteFound,
    RouteNotFound,
    RouteSelected,
    RoutingStarted,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
    TransactionBuilt,
    TransactionSubmitted,
    decide,
    event_id,
    fold,
    initial_state,
    is_interrupted,
    timers_of,
    transaction_signature,
)
from domain.quotes import RouteLeg, RoutingDecision, VenueQuote

S = OrderStatus
ORDER = "order-1"
SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
POLICY = ExecutionPolicy()


# --- builders ------------------------------------------------------------------------------


def execute(order_type: OrderType = OrderType.MARKET, **overrides: Any) -> ExecuteOrder:
    fields: dict[str, Any] = dict(
        command_id="cmd-execute", order_id=ORDER, issued_at=T0,
        token_in=SOL, token_out=USDC, token_in_symbol="SOL", token_out_symbol="USDC",
        token_in_decimals=9, token_out_decimals=6, amount_in=1_500_000_000, slippage_bps=50,
    )
    return execute_order(order_type, **(fields | overrides))


def decision(amount_out: int = 277_500_000, amount_in: int = 1_500_000_000) -> RoutingDecision:
    quote = VenueQuote(
        venue="raydium", amount_in=amount_in, amount_out=amount_out, fee=amount_in // 400,
        price_impact_bps=Decimal("12.5"), path=(SOL, USDC),
    )
    leg = RouteLeg(venue="raydium", amount_in=amount_in, amount_out=amount_out, path=(SOL, USDC))
    return RoutingDecision(
        token_in=SOL, token_out=USDC, amount_in=amount_in, quotes=(quote,), legs=(leg,),
        amount_out=amount_out, reason="best net output",
    )


def _meta(name: str) -> dict[str, Any]:
    return dict(command_id=f"cmd-{name}", order_id=ORDER, issued_at=T0)


def route_found(
    attempt: int = 1, amount_out: int = 277_500_000, amount_in: int = 1_500_000_000
) -> RouteFound:
    routed = decision(amount_out, amount_in)
    return RouteFound(**_meta(f"route-{attempt}"), attempt=attempt, decision=routed)


def route_not_found(attempt: int = 1, *, transient: bool = True) -> RouteNotFound:
    return RouteNotFound(
        **_meta(f"no-route-{attempt}"), attempt=attempt, error_code="venues_unavailable",
        message="no venue answered", transient=transient,
    )


def failed(attempt: int, stage: AttemptStage, *, transient: bool = True) -> AttemptFailed:
    return AttemptFailed(
        **_meta(f"failed-{attempt}-{stage}"), attempt=attempt, stage=stage,
        error_code=f"{stage}_error", message=f"{stage} went wrong", transient=transient,
    )


def submission(attempt: int = 1, signature: str | None = None) -> SubmissionSucceeded:
    signature = signature or transaction_signature(ORDER, attempt)
    return SubmissionSucceeded(
        **_meta(f"submitted-{attempt}"), attempt=attempt, signature=signature, slot=300
    )


def confirmation(attempt: int = 1, amount_out: int = 277_400_000) -> SwapConfirmed:
    signature = transaction_signature(ORDER, attempt)
    return SwapConfirmed(
        **_meta(f"confirmed-{attempt}"), attempt=attempt, signature=signature,
        amount_out=amount_out, slot=302,
    )


def retry_due(attempt: int) -> RetryDue:
    return RetryDue(**_meta(f"retry-{attempt}"), attempt=attempt)


def cancel() -> CancelOrder:
    return CancelOrder(**_meta("cancel"), reason="changed my mind")


def stall_check(seq: int) -> StallCheck:
    return StallCheck(**_meta(f"stall-{seq}"), stalled_seq=seq)


class Order:
    """Drives one order like the order agent does: decide, then fold the events."""

    def __init__(self, *commands: Command, policy: ExecutionPolicy = POLICY) -> None:
        self.state: OrderState = initial_state(ORDER)
        self.history: list[Event] = []
        self.now = T0
        self.policy = policy
        for command in commands:
            self.send(command)

    def status(self) -> OrderStatus | None:
        return self.state.status

    def send(self, command: Command, *, after: timedelta = timedelta(0)) -> tuple[Event, ...]:
        self.now += after
        events = decide(self.state, command, now=self.now, policy=self.policy)
        self.state = fold(events, self.state)
        self.history.extend(events)
        return events


def types(events: tuple[Event, ...]) -> list[type[Any]]:
    return [type(event) for event in events]


# --- accepting ---------------------------------------------------------------------------


def test_a_market_order_is_accepted_and_starts_routing_its_first_attempt() -> None:
    order = Order()
    events = order.send(execute())
    assert types(events) == [OrderAccepted, RoutingStarted]
    accepted, started = events
    assert isinstance(accepted, OrderAccepted) and isinstance(started, RoutingStarted)
    assert accepted.terms == execute().terms
    assert (accepted.terms.amount_in, accepted.terms.slippage_bps) == (1_500_000_000, 50)
    assert (accepted.terms.token_in, accepted.terms.token_out_decimals) == (SOL, 6)
    assert started.attempt == 1
    assert [e.seq for e in events] == [1, 2]
    assert [e.event_id for e in events] == [event_id(ORDER, 1), event_id(ORDER, 2)]
    assert {(e.correlation_id, e.causation_id, e.occurred_at) for e in events} == {
        ("cmd-execute", "cmd-execute", T0)
    }
    assert order.status() is S.ROUTING


def test_a_duplicate_execute_order_decides_nothing() -> None:
    order = Order(execute())
    assert order.send(execute()) == ()
    assert order.send(execute(command_id="a-retried-post", amount_in=5)) == ()


@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.SNIPER])
def test_limit_and_sniper_orders_without_their_terms_are_invalid(order_type: OrderType) -> None:
    # Their decisions are in test_order_conditional.py.
    missing = {OrderType.LIMIT: "limit_price", OrderType.SNIPER: "trigger"}[order_type]
    with pytest.raises(InvalidCommand, match=missing):  # written as None: only the rules catch it
        Order(execute(order_type, **{missing: None}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount_in": 0},
        {"amount_in": -1},
        {"slippage_bps": -1},
        {"slippage_bps": 10_001},
        {"token_out": SOL},
        {"token_in_decimals": 256},
    ],
)
def test_an_execute_order_the_edge_should_have_rejected_is_an_error(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(InvalidCommand):
        decide(initial_state(ORDER), execute(**overrides), now=T0, policy=POLICY)


def test_a_command_for_another_order_or_a_naive_clock_is_a_bug() -> None:
    with pytest.raises(OrderMismatch):
        decide(initial_state("other"), execute(), now=T0, policy=POLICY)
    with pytest.raises(ValueError, match="timezone"):
        decide(initial_state(ORDER), execute(), now=datetime(2025, 1, 1), policy=POLICY)


def test_inputs_before_the_order_is_accepted_decide_nothing() -> None:
    for command in (cancel(), route_found(), retry_due(1), stall_check(0), confirmation()):
        assert decide(initial_state(ORDER), command, now=T0, policy=POLICY) == ()


# --- the happy path ----------------------------------------------------------------------------


def test_a_market_order_is_routed_built_submitted_and_confirmed() -> None:
    order = Order(execute())
    selected, built = order.send(route_found(amount_out=277_500_000))
    assert isinstance(selected, RouteSelected) and isinstance(built, TransactionBuilt)
    assert selected.min_amount_out == built.min_amount_out == 277_500_000 * 9950 // 10000
    assert built.signature == transaction_signature(ORDER, 1)
    assert order.status() is S.BUILDING

    assert types(order.send(submission())) == [TransactionSubmitted]
    assert order.status() is S.SUBMITTED

    (confirmed,) = order.send(confirmation(amount_out=277_400_000))
    assert isinstance(confirmed, OrderConfirmed)
    assert confirmed.executed_price == Decimal("184.9333333333333333333333333")
    assert (confirmed.amount_out, confirmed.slot) == (277_400_000, 302)
    assert order.status() is S.CONFIRMED
    assert [e.seq for e in order.history] == list(range(1, 7))


def test_the_signature_is_base58_of_64_bytes_and_stable_per_attempt() -> None:
    signature = transaction_signature(ORDER, 1)
    assert 86 <= len(signature) <= 88  # a real Solana signature's length
    assert set(signature) <= set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    assert signature == transaction_signature(ORDER, 1) != transaction_signature(ORDER, 2)


def test_the_executed_price_ignores_the_callers_decimal_context() -> None:
    order = Order(execute(amount_in=10**9), route_found(amount_in=10**9), submission())
    with localcontext() as context:
        context.prec = 3
        (confirmed,) = order.send(confirmation(amount_out=185_123_456))
    assert isinstance(confirmed, OrderConfirmed)
    assert confirmed.executed_price == Decimal("185.123456")


def test_a_confirmation_while_building_records_the_lost_submission_first() -> None:
    order = Order(execute(), route_found())
    events = order.send(confirmation())
    assert types(events) == [TransactionSubmitted, OrderConfirmed]
    assert order.status() is S.CONFIRMED


def test_redelivered_reports_decide_nothing() -> None:
    order = Order(execute())
    for command in (route_found(), submission(), confirmation()):
        assert order.send(command)
        assert order.send(command) == ()


# --- stale and ill-fitting reports -----------------------------------------------------------


def test_reports_of_an_earlier_attempt_are_ignored() -> None:
    order = Order(execute(), route_not_found(1), retry_due(2))
    assert order.state.attempt == 2
    for stale in (route_found(1), route_not_found(1), failed(1, AttemptStage.ROUTING)):
        assert order.send(stale) == ()
    order.send(route_found(2))
    for late in (submission(1), confirmation(1), failed(1, AttemptStage.SUBMIT)):
        assert order.send(late) == ()


def test_reports_that_do_not_fit_the_status_are_ignored() -> None:
    order = Order(execute())
    for early in (submission(), confirmation(), failed(1, AttemptStage.CONFIRM)):
        assert order.send(early) == ()
    order.send(route_found())
    assert order.send(route_found()) == ()
    assert order.send(failed(1, AttemptStage.ROUTING)) == ()
    assert order.send(submission(signature="not-this-transaction")) == ()


def test_reports_during_a_backoff_are_ignored() -> None:
    order = Order(execute(), route_not_found(1))
    assert order.state.retry_pending == 2
    assert order.send(route_found(1)) == ()
    assert order.send(route_not_found(1)) == ()
    assert order.send(retry_due(3)) == ()


# --- failures and retries --------------------------------------------------------------------


def test_transient_failures_retry_after_1s_then_2s_and_the_third_fails_the_order() -> None:
    order = Order(execute())

    failure, retry = order.send(route_not_found(1))
    assert isinstance(failure, ExecutionAttemptFailed) and isinstance(retry, RetryScheduled)
    assert (failure.attempt, failure.stage, failure.transient) == (1, AttemptStage.ROUTING, True)
    assert (retry.next_attempt, retry.delay_ms, retry.retry_at) == (
        2, 1000, order.now + timedelta(seconds=1)
    )
    assert (order.state.retry_pending, order.state.retry_at) == (2, retry.retry_at)
    assert types(order.send(retry_due(2), after=timedelta(seconds=1))) == [RoutingStarted]
    assert (order.state.attempt, order.state.retry_pending, order.state.retry_at) == (2, None, None)

    order.send(route_found(2))
    _, retry = order.send(failed(2, AttemptStage.SUBMIT))
    assert isinstance(retry, RetryScheduled)
    assert (retry.next_attempt, retry.delay_ms) == (3, 2000)
    assert order.status() is S.ROUTING
    order.send(retry_due(3), after=timedelta(seconds=2))

    order.send(route_found(3, amount_out=277_000_000))
    order.send(submission(3))
    failure, final = order.send(failed(3, AttemptStage.CONFIRM))
    assert isinstance(final, OrderFailed)
    assert final.reason_code == "attempts_exhausted"
    post_mortem = final.post_mortem
    assert post_mortem.attempts == 3
    assert [(e.attempt, e.stage) for e in post_mortem.errors] == [
        (1, AttemptStage.ROUTING), (2, AttemptStage.SUBMIT), (3, AttemptStage.CONFIRM)
    ]
    assert post_mortem.last_decision == decision(277_000_000)
    assert order.status() is S.FAILED
    assert order.send(retry_due(4)) == ()


def test_a_permanent_failure_fails_the_order_at_once() -> None:
    order = Order(execute())
    failure, final = order.send(route_not_found(1, transient=False))
    assert isinstance(final, OrderFailed)
    assert final.reason_code == "venues_unavailable"
    assert final.post_mortem.attempts == 1 and final.post_mortem.last_decision is None
    assert order.status() is S.FAILED


def test_a_route_yielding_nothing_fails_the_order() -> None:
    order = Order(execute())
    failure, final = order.send(route_found(amount_out=0))
    assert isinstance(failure, ExecutionAttemptFailed) and not failure.transient
    assert isinstance(final, OrderFailed) and final.reason_code == "zero_amount_out"


def test_a_route_for_another_amount_fails_the_order_rather_than_swap_it() -> None:
    order = Order(execute(amount_in=10**9))
    failure, final = order.send(route_found())  # routed 1.5 SOL, not 1 SOL
    assert isinstance(final, OrderFailed) and final.reason_code == "route_mismatch"
    assert "1500000000" in final.message


def test_a_single_attempt_policy_fails_on_the_first_transient_error() -> None:
    order = Order(execute(), policy=ExecutionPolicy(max_attempts=1, retry_delays_ms=()))
    assert types(order.send(route_not_found(1))) == [ExecutionAttemptFailed, OrderFailed]


def test_a_policy_needs_a_delay_before_every_retry() -> None:
    with pytest.raises(ValueError):
        ExecutionPolicy(max_attempts=3, retry_delays_ms=(1000,))
    with pytest.raises(ValueError):
        ExecutionPolicy(max_attempts=0)


# --- cancelling ----------------------------------------------------------------------------


def test_a_pending_or_routing_order_is_cancelled() -> None:
    pending = fold(Order().send(execute())[:1], initial_state(ORDER))
    assert pending.status is S.PENDING
    assert types(decide(pending, cancel(), now=T0, policy=POLICY)) == [OrderCancelled]

    order = Order(execute())
    (cancelled,) = order.send(cancel())
    assert isinstance(cancelled, OrderCancelled) and cancelled.reason == "changed my mind"
    assert order.status() is S.CANCELLED


def test_a_cancel_during_a_backoff_cancels_and_the_retry_then_does_nothing() -> None:
    order = Order(execute(), route_not_found(1))
    assert types(order.send(cancel())) == [OrderCancelled]
    assert order.send(retry_due(2)) == ()


@pytest.mark.parametrize("commands", [(route_found(),), (route_found(), submission())])
def test_a_cancel_after_the_transaction_is_built_is_rejected_once(
    commands: tuple[Command, ...],
) -> None:
    order = Order(execute(), *commands)
    status = order.state.status
    (rejected,) = order.send(cancel())
    assert isinstance(rejected, CancelRejected) and str(status) in rejected.reason
    assert order.status() is status
    assert order.send(cancel()) == ()


def test_a_cancel_of_a_finished_or_unknown_order_decides_nothing() -> None:
    assert Order(execute(), cancel()).send(cancel()) == ()
    assert Order(execute(), route_found(), confirmation()).send(cancel()) == ()
    assert Order().send(cancel()) == ()


# --- a crash in the middle of a decision ------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "command"),
    [
        ((), execute()),  # OrderAccepted appended, RoutingStarted lost
        ((execute(),), route_found()),  # RouteSelected appended, TransactionBuilt lost
        ((execute(),), route_not_found(1)),  # ExecutionAttemptFailed appended, retry lost
        ((execute(),), route_not_found(1, transient=False)),  # ... OrderFailed lost
    ],
    ids=["accepted", "route-selected", "failed-then-retry", "failed-then-failure"],
)
def test_a_decision_cut_short_by_a_crash_is_finished_by_the_redelivered_command(
    before: tuple[Command, ...], command: Command
) -> None:
    order = Order(*before)
    whole = decide(order.state, command, now=order.now, policy=POLICY)
    cut_short = fold(whole[:1], order.state)
    assert is_interrupted(cut_short)
    assert decide(cut_short, command, now=order.now, policy=POLICY) == whole[1:]
    (timer,) = timers_of(cut_short, stall_timeout_ms=30_000)
    watchdog = decide(cut_short, timer.command, now=order.now, policy=POLICY)
    assert types(watchdog) == types(whole[1:])
    assert [e.event_id for e in watchdog] == [e.event_id for e in whole[1:]]


# --- the watchdog -----------------------------------------------------------------------------


def test_a_stalled_order_is_redriven_once_per_stall() -> None:
    order = Order(execute(), route_found())
    (redriven,) = order.send(stall_check(order.state.seq))
    assert isinstance(redriven, OrderRedriven)
    assert (redriven.stage, redriven.stalled_seq, redriven.attempt) == (S.BUILDING, 4, 1)
    assert order.send(stall_check(4)) == ()
    assert types(order.send(stall_check(5))) == [OrderRedriven]


def test_a_stall_check_for_an_order_that_moved_on_or_waits_for_a_retry_does_nothing() -> None:
    order = Order(execute())
    assert order.send(stall_check(1)) == ()
    order.send(route_not_found(1))
    assert order.send(stall_check(order.state.seq)) == ()
    order = Order(execute(), cancel())
    assert order.send(stall_check(order.state.seq)) == ()


def test_deciding_twice_gives_the_same_events_with_the_same_ids() -> None:
    state = Order(execute(), route_found()).state
    first = decide(state, confirmation(), now=T0, policy=POLICY)
    assert first == decide(state, confirmation(), now=T0, policy=POLICY)
