"""The order writer: the single writer of `orders.events` (the application layer, no Kafka).

Consumes decoded commands (edge commands, stage and trigger reports, timers) with the number of
the `orders.commands` partition they came from. Decides each with the pure core against the
partition's folded states, appends the events to the same partition number of the event store
through the `Outbox` port, hands the next piece of work to a stage, re-arms the order's timers
and shows the order's state to its observer (the trigger stage keeps its book of waiting
orders from it). Produces a `Decided` per command, whose `settled` future resolves once the
events are acknowledged by the broker and the work (sent only then: a stage must never act on
an event the store may not have) is too. Nothing is decided for an order on top of events
still on their way; if they failed, `DeliveryFailed` until `fail_stop` has the partition folded
again. A command to an order whose stored history could not be folded raises
`OrderQuarantined` with the reason. Nothing here waits on a venue; `streams.command_flow`
acks and rewinds, the Faust shell (`streams.app`) decodes. Duplicates decide nothing
(at-least-once delivery is safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from domain.orders.commands import Command
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.parent_links import commands_after, commands_on_load
from domain.orders.state import OrderState, initial_state, is_terminal
from domain.orders.status import OrderStatus
from domain.orders.timers import timers_after, timers_of
from domain.work import Work, work_after
from streams.order_states import PartitionStates
from streams.ports import Clock, Delivery, Outbox, failure_of
from streams.timers import TimerWheel

log = logging.getLogger(__name__)


# Told every state the writer holds: each order of a loaded partition (with no command), and
# the order's state after each command it decided (even when it decided nothing).
StateObserver = Callable[[OrderState, Command | None], None]


def _unobserved(state: OrderState, command: Command | None) -> None:
    return None


class StateSource(Protocol):
    """The folded states of one partition of the event store (`streams.order_states`)."""

    async def ready(self, partition: int) -> PartitionStates: ...


class OrderQuarantined(Exception):
    """The order's history in the event store cannot be folded: nothing is decided for it."""


class DeliveryFailed(Exception):
    """The order's previous events never reached the store: its in-memory state ran ahead,
    so nothing may be decided for it until its partition is folded again."""


class StateReloader(StateSource, Protocol):
    def revoke(self, partitions: Iterable[int]) -> set[str]:
        """Forget the partitions; returns the ids of the orders forgotten."""
        ...

    def reload(self, partition: int, after: Sequence[Delivery]) -> set[str]:
        """Drop the partition's states and fold it again once `after` are settled; returns
        the ids of the orders dropped."""
        ...


@dataclass(frozen=True, slots=True)
class WriterConfig:
    policy: ExecutionPolicy
    stall_timeout: timedelta


@dataclass(frozen=True, slots=True)
class Decided:
    """What one command caused: the events appended and the work handed on; `settled`
    resolves once all of it is durable (and fails if any of it never will be)."""

    events: tuple[Event, ...] = ()
    work: tuple[Work, ...] = ()
    settled: Delivery | None = None


class OrderWriter:
    def __init__(self, states: StateReloader, outbox: Outbox, config: WriterConfig,
                 clock: Clock, observe: StateObserver = _unobserved,
                 before_fire: Callable[[Command], Command] = lambda command: command) -> None:
        """`before_fire`: what the shell adds to a timer's command as it fires (a parent's
        `SliceDue` gets the price of the slice's size, `streams.slice_prices`)."""
        self._states = states
        self._outbox = outbox
        self._config = config
        self._clock = clock
        self._observe = observe
        self.timers = TimerWheel(clock, lambda command: outbox.command(before_fire(command)))
        self._unsettled: dict[str, Delivery] = {}  # order id -> its last decision's outputs
        self._resending: set[asyncio.Future[None]] = set()

    async def handle(self, partition: int, command: Command) -> Decided:
        """Decide one command of `orders.commands[partition]`.

        Raises DeliveryFailed if the order's previous events did not reach the store (after
        waiting for them if they are still on their way): its state ran ahead of the store."""
        await self._settled_before(command.order_id)
        partition_states = await self._states.ready(partition)
        state = partition_states.state_of(command.order_id)  # (restored on first touch)
        quarantined = partition_states.quarantined.get(command.order_id)
        if quarantined is not None:
            raise OrderQuarantined(f"order {command.order_id} is quarantined: {quarantined}")
        if state is None:
            if partition_states.ended(command.order_id):
                return Decided()  # an ended order decides nothing, ever (only its id is kept)
            state = initial_state(command.order_id)
        events = decide(state, command, now=self._clock(), policy=self._config.policy)
        if not events:
            self._observe(state, command)
            return Decided()
        statuses: list[OrderStatus] = []
        for event in events:
            state = evolve(state, event)
            assert state.status is not None  # evolve never leaves an accepted order without one
            statuses.append(state.status)
        # The status after each event goes into its envelope: readers need not fold again.
        try:
            deliveries = await self._outbox.events(partition, events, statuses,
                                                   partition_states.epoch, partition_states.heads)
        except Exception as exc:  # not enqueued: says nothing about the command, decide again
            partition_states.failed = True  # what was enqueued may land: fold before reusing
            raise DeliveryFailed(f"order {command.order_id}: its events could not be sent "
                                 f"({exc!r})") from exc
        partition_states.appending(deliveries)  # where the partition's end is, for a rebalance
        work = work_after(state, events)
        links = commands_after(state, events)  # a parent's children, a child's parent
        settled = asyncio.ensure_future(self._hand_on(deliveries, work, links))
        self._unsettled[state.order_id] = settled
        settled.add_done_callback(lambda done: self._forget_settled(command.order_id, done))
        if state.parent_id is not None and is_terminal(state):  # its final report is in links
            partition_states.report_pending(settled)
        partition_states.record(state, events, statuses)
        self.timers.arm(state.order_id, timers_after(state, events,
                                                     stall_timeout_ms=self._stall_ms))
        self._observe(state, command)
        return Decided(events, work, settled)

    def fail_stop(self, partition: int, after: Sequence[Delivery]) -> set[str]:
        """Forget the partition's states (they ran ahead of the store) and fold it again
        once `after` are settled; returns the ids of the orders dropped."""
        return self._forget(self._states.reload(partition, after))

    def revoke(self, partitions: Iterable[int]) -> set[str]:
        """Forget revoked partitions (their next owner folds them); returns the orders."""
        return self._forget(self._states.revoke(partitions))

    def forget(self, dropped: set[str]) -> set[str]:
        """Forget the timers and unsettled decisions of orders whose states were dropped."""
        return self._forget(dropped)

    def _forget(self, dropped: set[str]) -> set[str]:
        self.timers.disarm(dropped)
        for order_id in dropped:
            self._unsettled.pop(order_id, None)
        return dropped

    async def _settled_before(self, order_id: str) -> None:
        previous = self._unsettled.get(order_id)
        if previous is None:
            return
        if not previous.done():
            await asyncio.wait([previous])
        error = failure_of(previous)  # a failed one stays until the partition is folded again
        if error is None and self._unsettled.get(order_id) is previous:
            del self._unsettled[order_id]
        if error is not None:
            raise DeliveryFailed(f"order {order_id}: the events of its last decision were "
                                 f"not stored ({error!r})")

    def _forget_settled(self, order_id: str, settled: Delivery) -> None:
        """A decision that was stored holds nothing back; a failed one stays (see handle)."""
        if failure_of(settled) is None and self._unsettled.get(order_id) is settled:
            del self._unsettled[order_id]

    async def _hand_on(self, events: list[Delivery], work: tuple[Work, ...],
                       links: tuple[Command, ...] = ()) -> None:
        """Once the events are durable, hand the work on: a stage must never act on an
        event the store may not have (a swap could land for an order stuck before it).
        The same holds for a parent's commands to its children and a child's report."""
        await asyncio.gather(*events)
        for item in work:
            await (await self._outbox.work(item))
        for command in links:
            await (await self._outbox.command(command))

    def on_loaded(self, partition: int, states: list[OrderState]) -> None:
        """Re-arm the timers of a freshly folded partition (the watchdog and GTD expiries
        after a crash) and show its orders to the observer (waiting orders wait on).
        `states`: its orders in flight, and the children (of a twap/dca) that ended in the
        fold, whose final report is sent again."""
        for state in states:
            self.timers.arm(state.order_id, timers_of(state, stall_timeout_ms=self._stall_ms))
            self._observe(state, None)
        resend = [command for state in states for command in commands_on_load(state)]
        if resend:
            task = asyncio.ensure_future(self._resend(partition, resend))
            self._resending.add(task)
            task.add_done_callback(self._resending.discard)

    async def _resend(self, partition: int, commands: list[Command]) -> None:
        """Send again what a parent or a child of the folded partition may have left unsent
        (`parent_links.commands_on_load`); each is a duplicate if it was sent."""
        try:
            for command in commands:
                await (await self._outbox.command(command))
        except Exception:  # noqa: BLE001 - logged; the partition's next fold sends them again
            log.exception("orders.events[%d]: parent/child links not re-sent", partition)

    @property
    def _stall_ms(self) -> int:
        return int(self._config.stall_timeout.total_seconds() * 1000)

