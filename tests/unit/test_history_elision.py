"""A waiting order's runs of `PriceObserved` (domain.orders.elision): of a run only the last
says anything to the state, so a history without the others folds to exactly the same state;
any other gap is still a gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.orders import (
    CancelOrder,
    Command,
    Event,
    ExecutionPolicy,
    ObservePrice,
    PriceObserved,
    PriceReached,
    SequenceGap,
    decide,
    evolve,
    initial_state,
)
from domain.orders.elision import evolve_over_elided, superseded
from domain.orders.state import OrderState
from domain.orders.status import OrderType
from tests.orders_support import execute_order

ORDER = "order-1"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def limit_order() -> Command:
    return execute_order(OrderType.LIMIT, command_id="cmd-execute", order_id=ORDER,
                         issued_at=T0, token_in="So11111111111111111111111111111111111111112",
                         token_out="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
                         token_in_symbol="SOL", token_out_symbol="USDC",
                         token_in_decimals=9, token_out_decimals=6,
                         amount_in=1_000_000_000, slippage_bps=50,
                         limit_price=Decimal("190"))


def history(commands: list[Command]) -> tuple[list[Event], OrderState]:
    state, events = initial_state(ORDER), []
    for command in commands:
        for event in decide(state, command, now=command.issued_at, policy=ExecutionPolicy()):
            state = evolve(state, event)
            events.append(event)
    return events, state


def elided(events: list[Event]) -> list[Event]:
    return [e for e, after in zip(events, [*events[1:], None])
            if after is None or not superseded(e, after)]


PRICES = st.lists(st.sampled_from(["180", "181.5", "185", "189.99"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(PRICES, st.sampled_from(["none", "fire", "cancel"]), PRICES)
def test_a_history_without_superseded_price_observations_folds_to_the_same_state(
    before: list[str], then: str, after: list[str],
) -> None:
    at = iter(T0 + timedelta(seconds=n) for n in range(1000))
    commands: list[Command] = [limit_order()]
    commands += [ObservePrice(command_id=f"o{n}", order_id=ORDER, issued_at=next(at),
                              best_price=Decimal(p)) for n, p in enumerate(before)]
    if then == "fire":
        commands.append(PriceReached(command_id="r", order_id=ORDER, issued_at=next(at),
                                     observed_price=Decimal("191")))
    elif then == "cancel":
        commands.append(CancelOrder(command_id="c", order_id=ORDER, issued_at=next(at)))
    commands += [ObservePrice(command_id=f"p{n}", order_id=ORDER, issued_at=next(at),
                              best_price=Decimal(p)) for n, p in enumerate(after)]
    events, whole = history(commands)

    kept = elided(events)
    state = initial_state(ORDER)
    for event in kept:
        state = evolve_over_elided(state, event)

    assert state == whole
    observed = [e for e in events if isinstance(e, PriceObserved)]
    assert len(kept) == len(events) - max(0, len(observed) - 1)  # one run: its last is kept


def test_any_other_gap_is_still_a_gap() -> None:
    events, _ = history([limit_order(), ObservePrice(command_id="o", order_id=ORDER,
                                                     issued_at=T0, best_price=Decimal(180))])
    accepted, waiting, observed = events
    with pytest.raises(SequenceGap):
        evolve_over_elided(initial_state(ORDER), waiting)  # OrderAccepted missing
    with pytest.raises(SequenceGap):  # a PriceObserved of an order that is not waiting
        evolve_over_elided(evolve(initial_state(ORDER), accepted), observed)
