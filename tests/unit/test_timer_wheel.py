"""The timer wheel with a fake clock and outbox: what fires, when, and how often."""

from __future__ import annotations

from datetime import timedelta

from domain.orders.commands import ExpiryDue, StallCheck
from domain.orders.timers import Timer
from streams.timers import TimerWheel
from tests.unit.stream_fakes import T0, FakeClock, FakeOutbox


def stall(order_id: str, seq: int, after_s: float) -> Timer:
    due = T0 + timedelta(seconds=after_s)
    return Timer(delay_ms=int(after_s * 1000), due_at=due,
                 command=StallCheck(command_id=f"stall-{order_id}-{seq}", order_id=order_id,
                                    issued_at=due, stalled_seq=seq))


def expiry(order_id: str, after_s: float) -> Timer:
    due = T0 + timedelta(seconds=after_s)
    return Timer(delay_ms=int(after_s * 1000), due_at=due,
                 command=ExpiryDue(command_id=f"expiry-{order_id}", order_id=order_id,
                                   issued_at=due, expires_at=due))


def wheel() -> tuple[TimerWheel, FakeClock, FakeOutbox]:
    clock, outbox = FakeClock(), FakeOutbox()
    return TimerWheel(clock, outbox.command), clock, outbox


async def test_a_timer_fires_its_command_once_when_due() -> None:
    timers, clock, outbox = wheel()
    timers.arm("o-1", (stall("o-1", 2, 5),))

    assert await timers.fire_due() == []
    clock.advance(seconds=5)
    assert await timers.fire_due() == [stall("o-1", 2, 5).command]
    clock.advance(seconds=60)
    assert await timers.fire_due() == []
    assert len(outbox.of("command")) == 1 and len(timers) == 0


async def test_re_arming_replaces_the_order_s_timers_and_disarming_drops_them() -> None:
    timers, clock, outbox = wheel()
    timers.arm("o-1", (stall("o-1", 2, 5),))
    timers.arm("o-1", (stall("o-1", 3, 8),))
    timers.arm("o-2", (stall("o-2", 2, 5),))
    timers.disarm(["o-2"])

    clock.advance(seconds=10)

    assert await timers.fire_due() == [stall("o-1", 3, 8).command]
