"""The order writer: the single writer of `orders.events` (the application layer, no Kafka).

Consumes decoded commands (edge commands, stage and trigger reports, timers) with the number of
the `orders.commands` partition they came from. Decides each with the pure core against the
partition's folded states, appends the events to the same partition number of the event store
through the `Outbox` port, hands the next piece of work to a stage, re-arms the order's timers
and shows the order's state to its observer (the trigger stage keeps its book of waiting
orders from it). A command to an order whose stored history could not be folded raises
`OrderQuarantined` with the reason (the shell dead-letters it). Produces a `Decided` per command: what it decided and the deliveries of what
it produced. Nothing here waits on a venue; the Faust shell (`streams.app`) decodes, calls
`handle` and acks. Duplicates decide nothing (at-least-once delivery is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from domain.orders.commands import Command
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state
from domain.orders.timers import timers_after, timers_of
from domain.work import Work, work_after
from streams.order_states import PartitionStates
from streams.ports import Clock, Delivery, Outbox
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


@dataclass(frozen=True, slots=True)
class WriterConfig:
    policy: ExecutionPolicy
    stall_timeout: timedelta


@dataclass(frozen=True, slots=True)
class Decided:
    """What one command caused: the events appended, the work handed on, their deliveries."""

    events: tuple[Event, ...] = ()
    work: tuple[Work, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


class OrderWriter:
    def __init__(self, states: StateSource, outbox: Outbox, config: WriterConfig,
                 clock: Clock, observe: StateObserver = _unobserved) -> None:
        self._states = states
        self._outbox = outbox
        self._config = config
        self._clock = clock
        self._observe = observe
        self.timers = TimerWheel(clock, outbox.command)

    async def handle(self, partition: int, command: Command) -> Decided:
        """Decide one command of `orders.commands[partition]`."""
        partition_states = await self._states.ready(partition)
        quarantined = partition_states.quarantined.get(command.order_id)
        if quarantined is not None:
            raise OrderQuarantined(f"order {command.order_id} is quarantined: {quarantined}")
        states = partition_states.orders
        state = states.get(command.order_id) or initial_state(command.order_id)
        events = decide(state, command, now=self._clock(), policy=self._config.policy)
        if not events:
            self._observe(state, command)
            return Decided()
        for event in events:
            state = evolve(state, event)
        deliveries = await self._outbox.events(partition, events)
        work = work_after(state, events)
        for item in work:
            deliveries.append(await self._outbox.work(item))
        states[state.order_id] = state
        self.timers.arm(state.order_id, timers_after(state, events,
                                                     stall_timeout_ms=self._stall_ms))
        self._observe(state, command)
        return Decided(events, work, tuple(deliveries))

    def on_loaded(self, partition: int, states: list[OrderState]) -> None:
        """Re-arm the timers of a freshly folded partition (the watchdog and GTD expiries
        after a crash) and show its orders to the observer (waiting orders wait on)."""
        for state in states:
            self.timers.arm(state.order_id, timers_of(state, stall_timeout_ms=self._stall_ms))
            self._observe(state, None)

    @property
    def _stall_ms(self) -> int:
        return int(self._config.stall_timeout.total_seconds() * 1000)
