"""A bounded set of background tasks: how a stage keeps many orders in flight without letting
venue waits block its partition, and without growing without bound (backpressure)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class InFlight:
    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self.peak = 0

    async def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start `work` in the background and return its task; waits only when `limit` tasks
        already run."""
        await self._slots.acquire()
        task = asyncio.create_task(work)
        self._tasks.add(task)
        self.peak = max(self.peak, len(self._tasks))
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every task started so far has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
