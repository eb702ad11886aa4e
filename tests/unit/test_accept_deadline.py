"""The writer's side of the honest 503 (issue 10): an edge command counts only if the broker
appended its record by the command's accept-by deadline, and the decision reads no clock: both
instants come from the record (`acceptBy` on the wire, the broker's append time beside it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.orders import OrderAccepted, OrderCancelled, RoutingStarted
from domain.orders.commands import CancelOrder, ExecuteOrder, from_millis, to_millis
from domain.orders.decide import decide
from domain.orders.errors import AcceptDeadlinePassed
from domain.orders.policy import ExecutionPolicy
from domain.orders.evolve import fold
from domain.orders.state import initial_state
from tests.unit.test_order_decide import ORDER, T0, execute

DEADLINE = T0 + timedelta(seconds=3)
MS = timedelta(milliseconds=1)


def _decide(command: ExecuteOrder | CancelOrder, *, state_of: ExecuteOrder | None = None,
            now: datetime = T0 + timedelta(hours=1)) -> list[type[object]]:
    state = initial_state(ORDER)
    if state_of is not None:
        state = fold(decide(state, state_of, now=T0, policy=ExecutionPolicy()), state)
    return [type(e) for e in decide(state, command, now=now, policy=ExecutionPolicy())]


@pytest.mark.parametrize("appended_at", [T0, DEADLINE - MS, DEADLINE])
def test_an_execute_order_appended_by_its_deadline_is_accepted(appended_at: datetime) -> None:
    on_time = replace(execute(), accept_by=DEADLINE, appended_at=appended_at)
    # `now` (the writer's clock) is an hour late: it plays no part in the verdict.
    assert _decide(on_time) == [OrderAccepted, RoutingStarted]


def test_an_execute_order_appended_after_its_deadline_decides_nothing_and_says_why() -> None:
    late = replace(execute(), accept_by=DEADLINE, appended_at=DEADLINE + MS)

    with pytest.raises(AcceptDeadlinePassed, match="accept_deadline_passed") as raised:
        _decide(late, now=T0)  # the writer's own clock says "in time": it is not asked
    assert "1 ms after its accept-by deadline" in str(raised.value)
    assert raised.value.order_id == ORDER


def test_a_late_retry_of_an_existing_order_is_refused_too_and_changes_nothing() -> None:
    late = replace(execute(), accept_by=DEADLINE, appended_at=DEADLINE + timedelta(seconds=9))
    with pytest.raises(AcceptDeadlinePassed):
        _decide(late, state_of=execute())


def test_a_late_cancel_does_not_cancel() -> None:
    cancel = CancelOrder(command_id="c", order_id=ORDER, issued_at=T0, accept_by=DEADLINE,
                         appended_at=DEADLINE + MS)
    with pytest.raises(AcceptDeadlinePassed):
        _decide(cancel, state_of=execute())
    assert _decide(replace(cancel, appended_at=DEADLINE), state_of=execute()) == [OrderCancelled]


@pytest.mark.parametrize(("accept_by", "appended_at"), [
    (None, DEADLINE + timedelta(days=1)),  # no deadline: stage reports, timers, v1-v4 records
    (DEADLINE, None),  # no broker append time (a CreateTime topic): nothing to judge by
])
def test_without_both_instants_there_is_no_verdict(
    accept_by: datetime | None, appended_at: datetime | None
) -> None:
    command = replace(execute(), accept_by=accept_by, appended_at=appended_at)
    assert not command.appended_too_late
    assert _decide(command) == [OrderAccepted, RoutingStarted]


@pytest.mark.parametrize("millis", [0, 1, 1_764_480_000_123, 4_102_444_800_999])
def test_epoch_milliseconds_convert_exactly_both_ways(millis: int) -> None:
    assert to_millis(from_millis(millis)) == millis
    assert from_millis(millis).tzinfo is UTC


def test_to_millis_floors_sub_millisecond_instants() -> None:
    assert to_millis(datetime(1970, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == 1
