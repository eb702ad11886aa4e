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


async def test_re_arming_an_unchanged_expiry_keeps_one_heap_entry_per_order_and_kind() -> None:
    timers, clock, outbox = wheel()
    # A waiting GTD order whose bestPrice moves 1,000 times: each event re-arms its expiry.
    for _ in range(1_000):
        timers.arm("o-1", (expiry("o-1", 3_600),))

    assert timers.heap_size == 1
    clock.advance(seconds=3_600)
    assert [type(c) for c in await timers.fire_due()] == [ExpiryDue]
    assert len(outbox.of("command")) == 1


async def test_the_heap_stays_bounded_by_the_orders_when_their_stall_checks_keep_moving() -> None:
    timers, clock, _ = wheel()
    for seq in range(1, 1_001):  # every event of 10 orders moves its watchdog further out
        for order in range(10):
            timers.arm(f"o-{order}", (stall(f"o-{order}", seq, seq), expiry(f"o-{order}", 9e4)))

    assert len(timers) == 20
    assert timers.heap_size <= 2 * len(timers) + 64
    clock.advance(seconds=1_000)
    fired = await timers.fire_due()
    assert sorted(c.command_id for c in fired) == sorted(f"stall-o-{o}-1000" for o in range(10))


async def test_a_timer_whose_command_cannot_be_produced_is_re_armed_with_a_backoff() -> None:
    timers, clock, outbox = wheel()
    timers.arm("o-1", (stall("o-1", 2, 5),))
    clock.advance(seconds=5)

    outbox.fail_next = 1  # the producer refuses the first send
    assert await timers.fire_due() == []
    assert len(timers) == 1  # still armed, for a little later
    assert await timers.fire_due() == []  # not at once: a backoff
    clock.advance(seconds=1)
    assert await timers.fire_due() == [stall("o-1", 2, 5).command]


async def test_a_timer_whose_delivery_the_broker_refuses_is_re_armed_until_it_lands() -> None:
    timers, clock, outbox = wheel()
    timers.arm("o-1", (stall("o-1", 2, 5),))
    clock.advance(seconds=5)

    outbox.reject_next = 2
    assert await timers.fire_due() == []
    clock.advance(seconds=1)
    assert await timers.fire_due() == []
    clock.advance(seconds=2)
    assert await timers.fire_due() == [stall("o-1", 2, 5).command]
    assert len(outbox.of("command")) == 3 and len(timers) == 0


async def test_a_timer_re_armed_while_its_send_failed_is_not_duplicated() -> None:
    timers, clock, outbox = wheel()
    timers.arm("o-1", (stall("o-1", 2, 5),))
    clock.advance(seconds=5)
    outbox.fail_next = 1
    await timers.fire_due()
    timers.arm("o-1", (stall("o-1", 3, 20),))  # the order moved on meanwhile

    clock.advance(seconds=60)

    assert await timers.fire_due() == [stall("o-1", 3, 20).command]
