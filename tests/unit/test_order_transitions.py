"""The order lifecycle table, walked pair by pair, and the guards of `evolve`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import (
    EVENT_TYPES,
    SAME,
    TERMINAL,
    TERMINAL_EVENTS,
    TRANSITIONS,
    AttemptStage,
    CancelRejected,
    Event,
    ExecutionAttemptFailed,
    InvalidStateTransition,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderMismatch,
    OrderRedriven,
    OrderState,
    OrderStatus,
    MarketTerms,
    OrderTriggered,
    OrderType,
    OrderWaiting,
    PostMortem,
    PriceObserved,
    RetryScheduled,
    RouteSelected,
    RoutingStarted,
    SequenceGap,
    TransactionBuilt,
    TransactionSubmitted,
    Trigger,
    evolve,
    fold,
    initial_state,
)
from domain.orders.events import PARENT_EVENTS
from domain.orders.terms import TwapTerms
from domain.quotes import RouteLeg, RoutingDecision

S = OrderStatus
ORDER = "order-1"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)

# The lifecycle as the product spec states it; SAME = legal, status unchanged.
EXPECTED: dict[tuple[OrderStatus | None, type[Any]], Any] = {
    (None, OrderAccepted): S.PENDING,
    (S.PENDING, RoutingStarted): S.ROUTING,
    (S.ROUTING, RoutingStarted): S.ROUTING,
    (S.ROUTING, RouteSelected): S.BUILDING,
    (S.BUILDING, TransactionBuilt): S.BUILDING,
    (S.BUILDING, TransactionSubmitted): S.SUBMITTED,
    (S.SUBMITTED, OrderConfirmed): S.CONFIRMED,
    **{(s, ExecutionAttemptFailed): SAME for s in (S.ROUTING, S.BUILDING, S.SUBMITTED)},
    **{(s, RetryScheduled): S.ROUTING for s in (S.ROUTING, S.BUILDING, S.SUBMITTED)},
    **{(s, OrderFailed): S.FAILED for s in (S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED)},
    **{(s, OrderCancelled): S.CANCELLED for s in (S.PENDING, S.WAITING, S.ROUTING)},
    **{(s, CancelRejected): SAME for s in (S.ROUTING, S.BUILDING, S.SUBMITTED)},
    **{(s, OrderRedriven): SAME for s in (S.ROUTING, S.BUILDING, S.SUBMITTED)},
    # conditional orders: waiting until triggered; cancel and expiry until a transaction exists
    (S.PENDING, OrderWaiting): S.WAITING,
    (S.WAITING, PriceObserved): SAME,
    (S.WAITING, OrderTriggered): S.ROUTING,
    **{(s, OrderExpired): S.EXPIRED for s in (S.PENDING, S.WAITING, S.ROUTING)},
}

TERMS = MarketTerms(
    token_in="So11111111111111111111111111111111111111112",
    token_out="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    token_in_symbol="SOL",
    token_out_symbol="USDC",
    token_in_decimals=9,
    token_out_decimals=6,
    amount_in=1_500_000_000,
    slippage_bps=50,
    client_order_id=None,
)
DECISION = RoutingDecision(
    token_in=TERMS.token_in,
    token_out=TERMS.token_out,
    amount_in=TERMS.amount_in,
    quotes=(),
    legs=(RouteLeg(venue="raydium", amount_in=1, amount_out=2, path=("a", "b")),),
    amount_out=277_500_000,
    reason="only venue",
)


def state_in(status: OrderStatus | None) -> OrderState:
    """An order in `status`, attempt 1 once it has started routing, 5 events so far."""
    if status is None:
        return initial_state(ORDER)
    attempt = 0 if status in (S.PENDING, S.WAITING) else 1
    return OrderState(
        order_id=ORDER, status=status, seq=5, correlation_id="c", terms=TERMS, attempt=attempt
    )


def sample(event_type: type[Any], state: OrderState) -> Event:
    """An event of `event_type` that fits `state` in everything but the status."""
    meta: dict[str, Any] = dict(
        event_id="e", order_id=ORDER, seq=state.seq + 1, occurred_at=T0, correlation_id="c",
        causation_id="k",
    )
    now, following = state.attempt, state.attempt + 1
    samples: dict[type[Any], Callable[[], Event]] = {
        OrderAccepted: lambda: OrderAccepted(**meta, terms=TERMS),
        RoutingStarted: lambda: RoutingStarted(**meta, attempt=following),
        RouteSelected: lambda: RouteSelected(
            **meta, attempt=now, decision=DECISION, min_amount_out=1
        ),
        TransactionBuilt: lambda: TransactionBuilt(
            **meta, attempt=now, signature="sig", min_amount_out=1
        ),
        TransactionSubmitted: lambda: TransactionSubmitted(
            **meta, attempt=now, signature="sig", slot=9
        ),
        ExecutionAttemptFailed: lambda: ExecutionAttemptFailed(
            **meta, attempt=now, stage=AttemptStage.ROUTING, error_code="x", message="m",
            transient=True,
        ),
        RetryScheduled: lambda: RetryScheduled(
            **meta, next_attempt=following, delay_ms=1000, retry_at=T0 + timedelta(seconds=1)
        ),
        OrderConfirmed: lambda: OrderConfirmed(
            **meta, attempt=now, signature="sig", amount_out=5, executed_price=Decimal("1"),
            slot=9,
        ),
        OrderFailed: lambda: OrderFailed(
            **meta, reason_code="x", message="m",
            post_mortem=PostMortem(attempts=1, errors=(), last_decision=None),
        ),
        OrderCancelled: lambda: OrderCancelled(**meta, reason=None),
        CancelRejected: lambda: CancelRejected(**meta, reason="too late"),
        OrderRedriven: lambda: OrderRedriven(
            **meta, stage=S.ROUTING, stalled_seq=state.seq, attempt=now
        ),
        OrderWaiting: lambda: OrderWaiting(**meta, trigger=Trigger.PRICE),
        PriceObserved: lambda: PriceObserved(**meta, best_price=Decimal("185.2")),
        OrderTriggered: lambda: OrderTriggered(
            **meta, trigger=Trigger.PRICE, observed_price=Decimal("190")
        ),
        OrderExpired: lambda: OrderExpired(**meta, expires_at=T0),
    }
    return samples[event_type]()


# The single-swap events: a parent's (twap, dca) are folded by domain.orders.parent_evolve.
SWAP_EVENTS = [event_type for event_type in EVENT_TYPES if event_type not in PARENT_EVENTS]
PAIRS = [(status, event_type) for status in (None, *OrderStatus) for event_type in SWAP_EVENTS]


@pytest.mark.parametrize(
    ("status", "event_type"), PAIRS, ids=[f"{s}-{e.__name__}" for s, e in PAIRS]
)
def test_every_status_and_event_pair_moves_as_the_table_says_or_is_rejected(
    status: OrderStatus | None, event_type: type[Any]
) -> None:
    state = state_in(status)
    event = sample(event_type, state)
    expected = EXPECTED.get((status, event_type))
    if expected is None:
        with pytest.raises(InvalidStateTransition):
            evolve(state, event)
    else:
        assert evolve(state, event).status == (status if expected is SAME else expected)


PARENT_PAIRS = [(status, event_type) for status in (None, *OrderStatus)
                for event_type in PARENT_EVENTS]


@pytest.mark.parametrize(("status", "event_type"), PARENT_PAIRS,
                         ids=[f"{s}-{e.__name__}" for s, e in PARENT_PAIRS])
def test_a_parents_event_never_folds_into_a_single_swap_order(
    status: OrderStatus | None, event_type: type[Any]
) -> None:
    """Only a ParentAccepted on nothing yet is legal: it makes a parent, not a swap."""
    state = state_in(status)
    meta: dict[str, Any] = dict(event_id="e", order_id=ORDER, seq=state.seq + 1, occurred_at=T0,
                                correlation_id="c", causation_id="k")
    twap = TwapTerms(**{f: getattr(TERMS, f) for f in ("token_in", "token_out",
                        "token_in_symbol", "token_out_symbol", "token_in_decimals",
                        "token_out_decimals", "amount_in", "slippage_bps")},
                     slices=2, interval_s=1)
    values: dict[str, Any] = {"terms": twap, "slice_amounts": (1, 1), "slice_index": 0,
                              "child_id": "c", "amount_in": 1, "reason": "r",
                              "child_seq": 1, "child_status": S.ROUTING, "amount_out": 0}
    names = event_type.__dataclass_fields__.keys() - meta.keys()
    event = event_type(**meta, **{name: values[name] for name in names if name in values})
    if status is None and event_type is PARENT_EVENTS[0]:
        assert evolve(state, event).status is S.WAITING
        return
    with pytest.raises(InvalidStateTransition):
        evolve(state, event)


def test_the_table_is_the_lifecycle_of_the_spec() -> None:
    assert dict(TRANSITIONS) == EXPECTED


def test_terminal_statuses_have_no_way_out() -> None:
    assert not [key for key in TRANSITIONS if key[0] in TERMINAL]


def test_the_terminal_events_are_the_ones_leading_to_a_terminal_status() -> None:
    ending = {event_type for (_, event_type), target in TRANSITIONS.items() if target in TERMINAL}
    assert ending == set(TERMINAL_EVENTS) - set(PARENT_EVENTS)


def test_an_event_out_of_sequence_is_a_sequence_gap() -> None:
    state = state_in(S.ROUTING)
    event = sample(RouteSelected, state)
    for seq in (state.seq, state.seq + 2):
        with pytest.raises(SequenceGap):
            evolve(state, _with_seq(event, seq))


def test_an_event_of_another_order_is_rejected() -> None:
    event = sample(RouteSelected, state_in(S.ROUTING))
    with pytest.raises(OrderMismatch):
        evolve(replace(state_in(S.ROUTING), order_id="other"), event)


@pytest.mark.parametrize("attempt", [0, 2])
def test_a_report_of_another_attempt_is_rejected(attempt: int) -> None:
    state = state_in(S.ROUTING)
    event = RouteSelected(
        event_id="e", order_id=ORDER, seq=6, occurred_at=T0, correlation_id="c",
        causation_id="k", attempt=attempt, decision=DECISION, min_amount_out=1,
    )
    with pytest.raises(InvalidStateTransition, match="attempt"):
        evolve(state, event)


def test_fold_equals_evolving_one_event_at_a_time_and_keeps_the_status_history() -> None:
    accepted = sample(OrderAccepted, initial_state(ORDER))
    started = _with_seq(sample(RoutingStarted, state_in(S.PENDING)), 2)
    state = fold([accepted, started])
    assert state == evolve(evolve(initial_state(ORDER), accepted), started)
    assert state.status_history == ((S.PENDING, T0), (S.ROUTING, T0))
    assert state.entered_at(S.ROUTING) == T0 and state.entered_at(S.FAILED) is None


def test_fold_of_nothing_needs_an_initial_state() -> None:
    assert fold([], initial_state(ORDER)) == initial_state(ORDER)
    with pytest.raises(ValueError):
        fold([])


def _with_seq(event: Event, seq: int) -> Event:
    return replace(event, seq=seq)
