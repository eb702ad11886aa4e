"""The order writer with in-memory ports: what a command decides, appends, hands on and arms."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.market import Market
from domain.orders.commands import Command, RouteFound, StallCheck
from domain.orders.decide import ExecutionPolicy
from domain.orders.events import OrderAccepted, RouteSelected, RoutingStarted, TransactionBuilt
from domain.orders.state import OrderState
from domain.routing import best_route
from domain.tokens import SOL, USDC
from domain.work import ExecuteSwap, QuoteRoute
from streams.order_agent import DeliveryFailed, OrderWriter, WriterConfig
from tests.unit.stream_fakes import T0, FakeClock, FakeOutbox, FakeStates, execute_order

CONFIG = WriterConfig(ExecutionPolicy(), timedelta(seconds=15))


class Seen:
    def __init__(self) -> None:
        self.states: list[tuple[OrderState, Command | None]] = []

    def __call__(self, state: OrderState, command: Command | None) -> None:
        self.states.append((state, command))


def writer(outbox: FakeOutbox, states: FakeStates | None = None,
           seen: Seen | None = None, clock: FakeClock | None = None) -> OrderWriter:
    return OrderWriter(states or FakeStates(), outbox, CONFIG, clock or FakeClock(),
                       observe=seen or Seen())


async def run_pending() -> None:
    """Let every task that can make progress without I/O do so."""
    for _ in range(20):
        await asyncio.sleep(0)


def route_found(order_id: str, attempt: int = 1) -> RouteFound:
    decision = best_route(Market.default(), SOL.mint, USDC.mint, 1_500_000_000)
    return RouteFound(command_id=f"route-{order_id}-{attempt}", order_id=order_id, issued_at=T0,
                      attempt=attempt, decision=decision)


async def test_a_command_appends_its_events_to_its_partition_hands_on_work_and_arms_a_timer(
) -> None:
    outbox, seen = FakeOutbox(), Seen()
    order = writer(outbox, seen=seen)

    decided = await order.handle(3, execute_order("o-1"))

    assert [type(e) for e in decided.events] == [OrderAccepted, RoutingStarted]
    assert outbox.of("events") == list(decided.events)
    assert {s.partition for s in outbox.sent if s.kind == "events"} == {3}
    assert [e.seq for e in decided.events] == [1, 2]
    assert decided.work == (QuoteRoute(order_id="o-1", attempt=1, token_in=SOL.mint,
                                       token_out=USDC.mint, amount_in=1_500_000_000),)
    assert decided.settled is not None
    await decided.settled  # two events and then the work item, all delivered
    assert outbox.of("work") == list(decided.work)
    assert len(order.timers) == 1  # the watchdog of an order waiting on the routing stage
    assert seen.states[-1][0].seq == 2 and seen.states[-1][1] == execute_order("o-1")


async def test_a_duplicate_command_decides_nothing_and_produces_nothing() -> None:
    outbox = FakeOutbox()
    order = writer(outbox)
    first = await order.handle(0, execute_order("o-1"))
    assert first.settled is not None
    await first.settled
    produced = len(outbox.sent)

    decided = await order.handle(0, execute_order("o-1"))

    assert decided.events == () and decided.work == () and decided.settled is None
    assert len(outbox.sent) == produced


async def test_a_route_found_builds_the_transaction_and_asks_the_execution_stage() -> None:
    outbox = FakeOutbox()
    order = writer(outbox)
    await order.handle(1, execute_order("o-1"))

    decided = await order.handle(1, route_found("o-1"))

    assert [type(e) for e in decided.events] == [RouteSelected, TransactionBuilt]
    assert [e.seq for e in decided.events] == [3, 4]
    (swap,) = decided.work
    assert isinstance(swap, ExecuteSwap) and swap.attempt == 1 and swap.signature


async def test_a_folded_partition_re_arms_each_order_s_timers_and_shows_it_to_the_observer(
) -> None:
    outbox, states, seen = FakeOutbox(), FakeStates(), Seen()
    before = writer(outbox, states)
    await before.handle(2, execute_order("o-1"))
    await before.handle(2, execute_order("o-2"))

    after = writer(FakeOutbox(), seen=seen)  # a new owner of partition 2
    after.on_loaded(2, list(states.partitions[2].orders.values()))

    assert len(after.timers) == 2
    assert {s.order_id for s, command in seen.states if command is None} == {"o-1", "o-2"}


async def test_the_watchdog_fires_its_stall_check_to_the_commands_topic_when_due() -> None:
    outbox, clock = FakeOutbox(), FakeClock()
    order = writer(outbox, clock=clock)
    await order.handle(0, execute_order("o-1"))

    assert await order.timers.fire_due() == []
    clock.advance(seconds=15)
    fired = await order.timers.fire_due()

    assert [type(c) for c in fired] == [StallCheck]
    assert outbox.of("command") == fired
    assert fired[0].order_id == "o-1"


async def test_work_is_handed_on_only_once_the_events_are_durable() -> None:
    outbox = FakeOutbox(ack_manually=True)
    order = writer(outbox)

    decided = await order.handle(0, execute_order("o-1"))
    assert decided.settled is not None
    await run_pending()

    assert outbox.of("work") == []  # the routing stage must never act on unstored events
    outbox.settle_all()
    await run_pending()
    assert outbox.of("work") == list(decided.work)
    assert not decided.settled.done()  # until the work item is delivered too
    outbox.settle_all()
    await asyncio.wait_for(decided.settled, 1)


async def test_no_decision_builds_on_events_whose_delivery_failed() -> None:
    outbox = FakeOutbox(reject_next=2)  # the broker refuses OrderAccepted and RoutingStarted
    order = writer(outbox)
    decided = await order.handle(0, execute_order("o-1"))
    assert decided.settled is not None
    with pytest.raises(ConnectionError):
        await decided.settled

    with pytest.raises(DeliveryFailed):
        await order.handle(0, route_found("o-1"))

    assert [e.seq for e in outbox.of("events")] == [1, 2]  # no seq 3 on top of the lost ones
    assert outbox.of("work") == []


async def test_an_order_stays_blocked_after_a_failed_delivery_until_its_partition_is_reloaded(
) -> None:
    outbox, states = FakeOutbox(reject_next=2), FakeStates()
    order = writer(outbox, states)
    decided = await order.handle(0, execute_order("o-1"))
    with pytest.raises(ConnectionError):
        await decided.settled  # type: ignore[misc]

    for _ in range(2):  # however often it is asked
        with pytest.raises(DeliveryFailed):
            await order.handle(0, route_found("o-1"))
    assert order.fail_stop(0, []) == {"o-1"}
    again = await order.handle(0, execute_order("o-1"))  # decided afresh on the folded store

    assert [e.seq for e in again.events] == [1, 2]
