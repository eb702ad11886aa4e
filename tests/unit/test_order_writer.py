"""The order writer with in-memory ports: what a command decides, appends, hands on and arms."""

from __future__ import annotations

from datetime import timedelta

from domain.market import Market
from domain.orders.commands import Command, RouteFound, StallCheck
from domain.orders.decide import ExecutionPolicy
from domain.orders.events import OrderAccepted, RouteSelected, RoutingStarted, TransactionBuilt
from domain.orders.state import OrderState
from domain.routing import best_route
from domain.tokens import SOL, USDC
from domain.work import ExecuteSwap, QuoteRoute
from streams.order_agent import OrderWriter, WriterConfig
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
    assert outbox.of("work") == list(decided.work)
    assert len(decided.deliveries) == 3  # two events and one work item
    assert len(order.timers) == 1  # the watchdog of an order waiting on the routing stage
    assert seen.states[-1][0].seq == 2 and seen.states[-1][1] == execute_order("o-1")


async def test_a_duplicate_command_decides_nothing_and_produces_nothing() -> None:
    outbox = FakeOutbox()
    order = writer(outbox)
    await order.handle(0, execute_order("o-1"))
    produced = len(outbox.sent)

    decided = await order.handle(0, execute_order("o-1"))

    assert decided.events == () and decided.work == () and decided.deliveries == ()
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
