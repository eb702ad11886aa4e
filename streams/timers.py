"""In-memory timers of the order agent: retry backoff, the stall watchdog and GTD expiry.

Consumes the timers the pure core derives from an order's state (`timers_after` /
`timers_of`); produces each due timer's command to `orders.commands` through the `fire` port,
so the order's single writer decides what it means (it may be stale by then, and deciding a
stale timer yields nothing). No timer is durable on its own: after a crash or rebalance the
new owner re-derives every timer from the event store.

Bounded by the orders: an order holds at most one live timer per kind (`RetryDue`,
`StallCheck`, `ExpiryDue`). Re-arming an unchanged timer (a waiting GTD order's expiry, after
each of its events) touches nothing; a moved one leaves a stale heap entry behind, and the heap
is rebuilt from the live timers once the stale entries outnumber them. A timer whose command
cannot be produced, or whose delivery the broker refuses, stays armed and is tried again after
a growing backoff: a lost `StallCheck` would leave its order hanging.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from domain.orders.commands import Command
from domain.orders.timers import Timer
from streams.ports import Clock, Delivery

log = logging.getLogger(__name__)

Fire = Callable[[Command], Awaitable[Delivery]]

RETRY_FIRST: Final = timedelta(milliseconds=500)
RETRY_MAX: Final = timedelta(seconds=30)
_SLACK: Final = 64  # stale heap entries tolerated on top of the live ones before a rebuild


@dataclass(order=True, slots=True)
class _Entry:
    due_at: datetime
    number: int
    order_id: str = field(compare=False)
    timer: Timer = field(compare=False)
    live: bool = field(default=True, compare=False)
    failures: int = field(default=0, compare=False)

    @property
    def kind(self) -> type[Command]:
        return type(self.timer.command)


class TimerWheel:
    """The pending timers of each order (re-arming replaces them); fires them when due."""

    def __init__(self, clock: Clock, fire: Fire) -> None:
        self._clock = clock
        self._fire = fire
        self._armed: dict[str, dict[type[Command], _Entry]] = {}
        self._heap: list[_Entry] = []
        self._live = 0
        self._numbers = itertools.count()
        self._wake = asyncio.Event()

    def arm(self, order_id: str, timers: tuple[Timer, ...]) -> None:
        """The order's timers are now exactly `timers` (none: disarm it)."""
        old = self._armed.pop(order_id, {})
        new: dict[type[Command], _Entry] = {}
        for timer in timers:
            kind = type(timer.command)
            kept = old.pop(kind, None)
            if kept is not None and _same(kept.timer, timer) and kept.failures == 0:
                kept.timer = timer  # unchanged: keep its heap entry
                new[kind] = kept
            else:
                if kept is not None:
                    self._retire(kept)
                new[kind] = self._push(order_id, timer, timer.due_at)
        for stale in old.values():
            self._retire(stale)
        if new:
            self._armed[order_id] = new
        self._compact()
        self._wake.set()

    def disarm(self, order_ids: Iterable[str]) -> None:
        for order_id in order_ids:
            for entry in self._armed.pop(order_id, {}).values():
                self._retire(entry)
        self._compact()

    def __len__(self) -> int:
        """Live timers."""
        return self._live

    @property
    def heap_size(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        while True:
            await self.fire_due()
            await self._sleep_until_next()

    async def fire_due(self) -> list[Command]:
        """Produce the command of every timer due by now; returns those the broker took.

        All due commands are enqueued first, then their deliveries awaited together."""
        sending: list[tuple[_Entry, Delivery]] = []
        for entry in self._pop_due():
            try:
                sending.append((entry, await self._fire(entry.timer.command)))
            except Exception as exc:
                self._retry(entry, exc)
        fired: list[Command] = []
        for entry, delivery in sending:
            try:
                await delivery
            except Exception as exc:
                self._retry(entry, exc)
            else:
                fired.append(entry.timer.command)
        return fired

    def _pop_due(self) -> list[_Entry]:
        now, due = self._clock(), []
        while self._heap and self._heap[0].due_at <= now:
            entry = heapq.heappop(self._heap)
            if entry.live:
                self._forget(entry)
                due.append(entry)
        return due

    def _retry(self, entry: _Entry, error: Exception) -> None:
        """Arm the timer again a little later, unless the order was re-armed meanwhile."""
        armed = self._armed.setdefault(entry.order_id, {})
        if entry.kind in armed:
            return
        delay = min(RETRY_FIRST * 2**entry.failures, RETRY_MAX)
        log.warning("could not fire %s for %s (%r); again in %s", entry.kind.__name__,
                    entry.order_id, error, delay)
        again = self._push(entry.order_id, entry.timer, self._clock() + delay)
        again.failures = entry.failures + 1
        armed[entry.kind] = again
        self._wake.set()

    def _push(self, order_id: str, timer: Timer, due_at: datetime) -> _Entry:
        entry = _Entry(due_at, next(self._numbers), order_id, timer)
        heapq.heappush(self._heap, entry)
        self._live += 1
        return entry

    def _retire(self, entry: _Entry) -> None:
        if entry.live:
            entry.live = False
            self._live -= 1

    def _forget(self, entry: _Entry) -> None:
        """A popped live entry: no longer armed."""
        self._retire(entry)
        armed = self._armed.get(entry.order_id, {})
        if armed.get(entry.kind) is entry:
            del armed[entry.kind]
            if not armed:
                del self._armed[entry.order_id]

    def _compact(self) -> None:
        if len(self._heap) > 2 * self._live + _SLACK:
            self._heap = [entry for entry in self._heap if entry.live]
            heapq.heapify(self._heap)

    async def _sleep_until_next(self) -> None:
        self._wake.clear()
        delay = 1.0
        if self._heap:
            delay = max(0.0, (self._heap[0].due_at - self._clock()).total_seconds())
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 1.0))
        except TimeoutError:
            pass


def _same(armed: Timer, timer: Timer) -> bool:
    """The same logical timer (its causation may differ: it is re-derived after each event)."""
    return armed.due_at == timer.due_at and armed.command.command_id == timer.command.command_id
