"""Faust's worker, less mode's fixed waits on the way out.

Once its services have stopped (offsets committed, the group left, the producer flushed),
mode's worker sleeps up to 1 s for stray tasks to end by themselves and then 1 s more for a
"sentinel" before it closes the loop: each stop took about 2 s longer than its work. A rolling
restart paid them before the new process could even start, and the test suite once per worker
it stops. Here what is still pending is cancelled at once and given a bounded moment to unwind.
"""

from __future__ import annotations

import asyncio

import faust

UNWIND_S = 1.0  # at most, for cancelled tasks to run their `finally` blocks


class Worker(faust.Worker):
    def _gather_all(self) -> None:
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=UNWIND_S))

    async def _sentinel_task(self) -> None:
        """(Run once before the loop closes; nothing left to wait for.)"""
