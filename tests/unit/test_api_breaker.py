"""The command bus's circuit breaker, on a fake clock: once Kafka is known down a POST fails at
once without sending anything; one probe at a time finds out when it is back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from api.breaker import Breaker, BreakerState
from api.command_bus import CommandBus, CommandNotDelivered, CommandNotSent
from domain.orders.commands import CancelOrder
from tests.unit.test_api_command_bus import TOPIC, Factory, FakeEncoder, FakeProducer

STALL_S, COOLDOWN_S = 1.0, 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: Breaker) -> BreakerState:
    return breaker.state  # read afresh (mypy would narrow the attribute between asserts)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> Breaker:
    return Breaker(clock, stall_s=STALL_S, cooldown_s=COOLDOWN_S)


def test_a_closed_breaker_admits_every_send(breaker: Breaker) -> None:
    admitted = [breaker.admit() for _ in range(3)]
    assert all(a is not None for a in admitted)
    for admission in admitted:
        assert admission is not None
        breaker.acked(admission)
    assert state_of(breaker) is BreakerState.CLOSED


def test_a_failure_opens_it_for_the_cooldown_then_one_probe_goes(
    breaker: Breaker, clock: FakeClock
) -> None:
    first = breaker.admit()
    assert first is not None
    breaker.failed(first, "no acknowledgement within 4s")

    assert state_of(breaker) is BreakerState.OPEN and breaker.admit() is None
    assert breaker.retry_after_s() == 2 and "4s" in breaker.why
    clock.now += COOLDOWN_S - 0.01
    assert breaker.admit() is None and breaker.retry_after_s() == 1
    clock.now += 0.01
    probe = breaker.admit()
    assert probe is not None and probe.probe
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.admit() is None  # one probe at a time
    breaker.acked(probe)
    assert state_of(breaker) is BreakerState.CLOSED and breaker.admit() is not None


def test_a_failed_probe_opens_it_again(breaker: Breaker, clock: FakeClock) -> None:
    first = breaker.admit()
    assert first is not None
    breaker.failed(first, "down")
    clock.now += COOLDOWN_S
    probe = breaker.admit()
    assert probe is not None
    clock.now += 4.0
    breaker.failed(probe, "still down")

    assert state_of(breaker) is BreakerState.OPEN and breaker.admit() is None
    assert breaker.retry_after_s() == 2  # a full cooldown from the probe's failure


def test_an_overdue_acknowledgement_opens_it_before_any_timeout(
    breaker: Breaker, clock: FakeClock
) -> None:
    waiting = breaker.admit()
    assert waiting is not None
    clock.now += STALL_S  # exactly the stall: not yet
    assert breaker.admit() is not None
    clock.now += 0.01

    assert breaker.admit() is None
    assert state_of(breaker) is BreakerState.OPEN and "1.0 s" in breaker.why


def test_acknowledgements_still_coming_keep_it_closed_however_old_a_send(
    breaker: Breaker, clock: FakeClock
) -> None:
    slow = breaker.admit()  # its acknowledgement takes long: a backlog, a busy event loop
    assert slow is not None
    for _ in range(5):
        clock.now += STALL_S * 0.9
        other = breaker.admit()
        assert other is not None
        breaker.acked(other)  # Kafka keeps answering meanwhile
    clock.now += STALL_S * 0.9
    assert breaker.admit() is not None
    assert state_of(breaker) is BreakerState.CLOSED


def test_an_acknowledged_send_no_longer_counts_as_waiting(
    breaker: Breaker, clock: FakeClock
) -> None:
    done = breaker.admit()
    assert done is not None
    breaker.acked(done)
    clock.now += 10 * STALL_S
    assert breaker.admit() is not None


def test_late_failures_of_sends_from_before_a_recovery_do_not_reopen_it(
    breaker: Breaker, clock: FakeClock
) -> None:
    stuck = [breaker.admit() for _ in range(3)]
    clock.now += STALL_S + 0.1
    assert breaker.admit() is None  # opened: the stuck sends are overdue
    clock.now += COOLDOWN_S
    probe = breaker.admit()
    assert probe is not None
    breaker.acked(probe)
    for admission in stuck:  # their timeouts come in after Kafka came back
        assert admission is not None
        breaker.failed(admission, "no acknowledgement within 4s")

    assert state_of(breaker) is BreakerState.CLOSED and breaker.admit() is not None


def test_any_acknowledgement_closes_it(breaker: Breaker, clock: FakeClock) -> None:
    early = breaker.admit()
    late = breaker.admit()
    assert early is not None and late is not None
    breaker.failed(early, "down")
    breaker.acked(late)  # admitted before it opened, acknowledged after: Kafka answers
    assert state_of(breaker) is BreakerState.CLOSED


def test_an_abandoned_probe_lets_the_next_send_probe(breaker: Breaker, clock: FakeClock) -> None:
    first = breaker.admit()
    assert first is not None
    breaker.failed(first, "down")
    clock.now += COOLDOWN_S
    probe = breaker.admit()
    assert probe is not None
    breaker.abandoned(probe)  # the client hung up
    assert breaker.admit() is not None


def test_its_periods_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        Breaker(clock, stall_s=0, cooldown_s=1)


# --- in the bus ---------------------------------------------------------------------------


def cancel(order_id: str) -> CancelOrder:
    return CancelOrder(command_id=f"c-{order_id}", order_id=order_id,
                       issued_at=datetime(2025, 1, 1, tzinfo=UTC))


async def test_while_kafka_is_down_the_bus_refuses_at_once_and_sends_nothing(
    clock: FakeClock,
) -> None:
    producer = FakeProducer(["hang", "ack"])
    breaker = Breaker(clock, stall_s=STALL_S, cooldown_s=COOLDOWN_S)
    async with CommandBus(Factory(producer), TOPIC, FakeEncoder(), delivery_timeout_s=0.05,
                          breaker=breaker) as bus:
        with pytest.raises(CommandNotDelivered):
            await bus.send(cancel("o-1"))
        with pytest.raises(CommandNotSent, match="nothing was sent") as refused:
            await asyncio.wait_for(bus.send(cancel("o-2")), 0.01)  # no waiting at all
        assert refused.value.retry_after_s == 2
        assert [key for _, _, key in producer.sent] == [b"o-1"]
        clock.now += COOLDOWN_S
        await bus.send(cancel("o-3"))  # the probe: acknowledged, Kafka is back
        await bus.send(cancel("o-4"))

    assert [key for _, _, key in producer.sent] == [b"o-1", b"o-3", b"o-4"]


async def test_an_overdue_acknowledgement_makes_the_next_send_fail_fast(
    clock: FakeClock,
) -> None:
    producer = FakeProducer(["hang"])
    breaker = Breaker(clock, stall_s=STALL_S, cooldown_s=COOLDOWN_S)
    async with CommandBus(Factory(producer), TOPIC, FakeEncoder(), delivery_timeout_s=60,
                          breaker=breaker) as bus:
        stuck = asyncio.create_task(bus.send(cancel("o-1")))
        while not producer.sent:
            await asyncio.sleep(0)
        clock.now += STALL_S + 0.5
        with pytest.raises(CommandNotSent, match="no acknowledgement from Kafka for 1.5 s"):
            await bus.send(cancel("o-2"))
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck

    assert [key for _, _, key in producer.sent] == [b"o-1"]
