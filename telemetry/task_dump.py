"""`kill -USR1 <pid>`: a process logs what each of its asyncio tasks is waiting on.

py-spy sees threads, not coroutines: a worker that has stopped deciding shows an idle event
loop, while the answer is which `await` each task is parked on. Installed on the running loop
by the worker; writes one WARNING log line per task with its coroutine's frames.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal

log = logging.getLogger(__name__)


def install(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)


def dump_tasks() -> None:
    tasks = asyncio.all_tasks()
    log.warning("SIGUSR1: %d asyncio tasks", len(tasks))
    for task in tasks:
        text = io.StringIO()
        task.print_stack(limit=12, file=text)
        log.warning("task %s:\n%s", task.get_name(), text.getvalue())
