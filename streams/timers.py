"""In-memory timers of the order agent: retry backoff and the stall watchdog.

No timer is durable on its own: each is a function of an order's folded state (the pure
`timers_after` / `timers_of`), so after a crash or rebalance the new owner re-derives every
timer from the event store. A due timer is not acted on here: its command is produced to
`orders.commands`, so the order's single writer decides what it means (it may be stale by
then, and deciding a stale timer yields nothing).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from domain.orders.commands import Command
from domain.orders.timers import Timer
from streams.ports import Clock, Delivery

log = logging.getLogger(__name__)

Fire = Callable[[Command], Awaitable[Delivery]]


class TimerWheel:
    """The pending timers of each order (re-arming replaces them); fires them when due."""

    def __init__(self, clock: Clock, fire: Fire) -> None:
        self._clock = clock
        self._fire = fire
        self._current: dict[str, tuple[Timer, ...]] = {}
        self._heap: list[tuple[datetime, int, str, Timer]] = []
        self._counter = itertools.count()
        self._wake = asyncio.Event()

    def arm(self, order_id: str, timers: tuple[Timer, ...]) -> None:
        if not timers:
            self._current.pop(order_id, None)
            return
        self._current[order_id] = timers
        for timer in timers:
            heapq.heappush(self._heap, (timer.due_at, next(self._counter), order_id, timer))
        self._wake.set()

    def disarm(self, order_ids: Iterable[str]) -> None:
        for order_id in order_ids:
            self._current.pop(order_id, None)

    def __len__(self) -> int:
        return len(self._current)

    async def run(self) -> None:
        while True:
            await self.fire_due()
            await self._sleep_until_next()

    async def fire_due(self) -> list[Command]:
        """Produce the command of every timer due by now; returns the commands fired."""
        fired = self._pop_due()
        for command in fired:
            try:
                await self._fire(command)
            except Exception:  # not lost: the next stall check re-derives it
                log.exception("could not fire %s for %s", type(command).__name__,
                              command.order_id)
        return fired

    def _pop_due(self) -> list[Command]:
        now = self._clock()
        due: list[Command] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, order_id, timer = heapq.heappop(self._heap)
            armed = self._current.get(order_id, ())
            if timer in armed:  # a timer replaced by a later arm is stale
                rest = tuple(t for t in armed if t is not timer)
                self._current[order_id] = rest
                if not rest:
                    del self._current[order_id]
                due.append(timer.command)
        return due

    async def _sleep_until_next(self) -> None:
        self._wake.clear()
        delay = 1.0
        if self._heap:
            delay = max(0.0, (self._heap[0][0] - self._clock()).total_seconds())
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 1.0))
        except TimeoutError:
            pass
