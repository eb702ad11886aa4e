"""A bounded mailbox per WebSocket subscriber: the fan-out puts, the connection takes.

`offer` never waits: the fan-out serves every subscriber from one loop, so a slow one must
not slow the others. A mailbox that is full is marked overflowed, emptied (so it holds no
memory) and closed to further events; its owner is told at once through `on_overflow`,
because the connection may be stuck in a send to a client that stopped reading and would
never come back to `take`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SubscriberTooSlow(Exception):
    """The subscriber fell more than its mailbox's size behind the live feed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"slow consumer: more than {limit} events waiting; reconnect to resume")
        self.limit = limit


class FeedStopped(Exception):
    """The fan-out stopped (the process is shutting down)."""


class Mailbox(Generic[T]):
    """At most `limit` items; overflow ends the subscription instead of growing."""

    __slots__ = ("_items", "_limit", "_wakeup", "_overflowed", "_stopped", "on_overflow")

    def __init__(self, limit: int) -> None:
        self._items: deque[T] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()
        self._overflowed = False
        self._stopped = False
        self.on_overflow: Callable[[], None] | None = None

    def offer(self, item: T) -> None:
        """Queue `item`, or overflow if the subscriber is `limit` items behind."""
        if self._overflowed or self._stopped:
            return
        if len(self._items) >= self._limit:
            self._overflowed = True
            self._items.clear()
            self._wakeup.set()
            if self.on_overflow is not None:
                self.on_overflow()
            return
        self._items.append(item)
        self._wakeup.set()

    def stop(self) -> None:
        """The feed ended: wake the taker, which raises `FeedStopped` once drained."""
        self._stopped = True
        self._wakeup.set()

    def drain(self) -> list[T]:
        """Everything queued now, without waiting."""
        self._raise_if_ended(empty=False)
        items = list(self._items)
        self._items.clear()
        return items

    async def take(self) -> T:
        """The next item; raises `SubscriberTooSlow` or `FeedStopped`."""
        while not self._items:
            self._raise_if_ended(empty=True)
            self._wakeup.clear()
            await self._wakeup.wait()
        self._raise_if_ended(empty=False)
        return self._items.popleft()

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    def _raise_if_ended(self, *, empty: bool) -> None:
        if self._overflowed:
            raise SubscriberTooSlow(self._limit)
        if self._stopped and empty:
            raise FeedStopped("the live feed stopped")
