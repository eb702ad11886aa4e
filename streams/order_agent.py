"""The order agent: the single writer of `orders.events`.

Consumes `orders.commands` (edge commands, stage and trigger reports, timers), decides with the
pure core, appends the events to the same partition number of `orders.events`, hands the next
piece of work to a stage, re-arms the order's timers and shows the order's state to its
observer (the trigger stage keeps its book of waiting orders from it). Nothing here waits on a
venue: one command is a few microseconds of pure code plus non-blocking produces that Faust
flushes before it commits the command's offset (at-least-once; duplicates decide nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.orders.commands import Command
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus
from domain.orders.timers import timers_after, timers_of
from domain.work import work_after
from schemas.codec import Codec
from streams.order_states import OrderStates
from streams.outbox import Outbox
from streams.timers import TimerWheel

log = logging.getLogger(__name__)


# Told every state the writer holds: each order of a loaded partition (with no command), and
# the order's state after each command it decided (even when it decided nothing).
StateObserver = Callable[[OrderState, Command | None], None]


def _unobserved(state: OrderState, command: Command | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WriterConfig:
    policy: ExecutionPolicy
    stall_timeout: timedelta


class OrderWriter:
    def __init__(self, codec: Codec, states: OrderStates, outbox: Outbox, config: WriterConfig,
                 clock: Callable[[], datetime], observe: StateObserver = _unobserved) -> None:
        self._codec = codec
        self._states = states
        self._outbox = outbox
        self._config = config
        self._clock = clock
        self._observe = observe
        self.timers = TimerWheel(clock, outbox.command)

    async def handle(self, partition: int, value: bytes) -> int:
        """Decide one command; returns how many events it appended."""
        command = self._codec.decode_command(value)
        states = await self._states.ready(partition)
        state = self._states.get(states, command.order_id)
        events = decide(state, command, now=self._clock(), policy=self._config.policy)
        if not events:
            self._observe(state, command)
            return 0
        statuses = []
        for event in events:
            state = evolve(state, event)
            statuses.append(state.status)
        await self._append(partition, events, statuses)
        for work in work_after(state, events):
            await self._outbox.work(work)
        states[state.order_id] = state
        self.timers.arm(state.order_id, timers_after(state, events,
                                                     stall_timeout_ms=self._stall_ms))
        self._observe(state, command)
        return len(events)

    def on_loaded(self, partition: int, states: list[OrderState]) -> None:
        """Re-arm the timers of a freshly folded partition (the watchdog and GTD expiries
        after a crash) and show its orders to the observer (waiting orders wait on)."""
        for state in states:
            self.timers.arm(state.order_id, timers_of(state, stall_timeout_ms=self._stall_ms))
            self._observe(state, None)

    async def _append(self, partition: int, events: tuple[Event, ...],
                      statuses: list[OrderStatus | None]) -> None:
        # The status after each event goes into its envelope: readers need not fold again.
        for event, status in zip(events, statuses, strict=True):
            assert status is not None  # evolve never leaves an accepted order without one
            value = self._codec.encode_event(event, status=status)
            await self._outbox.event(partition, event.order_id, value)

    @property
    def _stall_ms(self) -> int:
        return int(self._config.stall_timeout.total_seconds() * 1000)
