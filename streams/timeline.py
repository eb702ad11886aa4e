"""The worker's start-up and takeover timeline: one INFO line per phase (logger `streams.timeline`).

Consumes the moments the composition root reports as they happen: imports done, schemas
registered, Faust app built, partitions assigned, their states ready (claimed and folded, or
kept), the first command handled; and, once running, each rebalance's revocation and
assignment. Produces one log line per phase saying when it ended, counted from the process's
own start (read from /proc on Linux: the interpreter's start-up and the imports are part of a
restart's cost too), how long the phase itself took, and the CPU time the process had used by
then (on a loaded machine the wall times stretch, the CPU times much less). A rebalance's lines count from its
revocation instead, which is when the worker's partitions stopped flowing.

Lines of phases that end before logging is configured (Faust's worker configures it when it
starts) are held and logged at `flush`, with the times they happened.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def started_at_from_proc(stat: str, uptime: str, ticks_per_s: int, now: float) -> float:
    """The wall-clock time a process started, from its /proc/<pid>/stat and /proc/uptime
    read at `now`. Field 22 of stat is the start in clock ticks since boot; the command name
    (field 2) may hold spaces and parentheses, so fields are counted after its last ')'."""
    after_name = stat[stat.rindex(")") + 2:].split()
    start_ticks = int(after_name[22 - 3])  # after_name begins with field 3 (state)
    age_s = float(uptime.split()[0]) - start_ticks / ticks_per_s
    return now - age_s


def process_started_at(clock: Clock = time.time) -> float:
    """When this process started (now, where /proc cannot tell)."""
    now = clock()
    try:
        return started_at_from_proc(Path("/proc/self/stat").read_text(),
                                    Path("/proc/uptime").read_text(),
                                    os.sysconf("SC_CLK_TCK"), now)
    except (OSError, ValueError, IndexError):
        return now


class Timeline:
    def __init__(self, started_at: float, clock: Clock = time.time,
                 cpu: Clock = time.process_time) -> None:
        self._clock = clock
        self._cpu = cpu
        self._started_at = started_at
        self._last = started_at
        self._held: list[str] | None = []
        self._started_up = False  # until the states of the first assignment are ready
        self._revoked_at: float | None = None
        self._assigned_at: float | None = None
        self._first_record = False

    def mark(self, phase: str) -> None:
        """A start-up phase ended now."""
        now = self._clock()
        self._say(f"start-up: {phase} at +{now - self._started_at:.2f} s "
                  f"({now - self._last:.2f} s; cpu {self._cpu():.2f} s)")
        self._last = now

    def flush(self) -> None:
        """Logging is configured: log the lines held until now, and every later one at once."""
        held, self._held = self._held or [], None
        for line in held:
            log.info(line)

    def revoked(self) -> None:
        """The group took every partition back (the eager protocol): they stop flowing now."""
        if self._started_up:
            self._revoked_at = self._clock()

    def assigned(self, partitions: Collection[int], new: Collection[int]) -> None:
        """The group assigned `partitions` of orders.commands; `new` are to be claimed and
        folded, the others were kept."""
        now = self._clock()
        self._assigned_at = now
        what = (f"{len(partitions)} partitions of orders.commands assigned "
                f"({len(new)} new: {sorted(new)}, {len(partitions) - len(new)} kept)")
        if not self._started_up:
            self.mark(f"joined the group, {what}")
        elif self._revoked_at is not None:
            self._say(f"rebalance: {what} {now - self._revoked_at:.2f} s after the revocation")

    def ready(self, partitions: Collection[int]) -> None:
        """The states of the assigned `partitions` are ready: the writer decides on them."""
        if not self._started_up:
            self._started_up = True
            self.mark(f"states of {len(partitions)} partitions ready")
            return
        if self._revoked_at is None:
            return
        now = self._clock()
        since = self._assigned_at if self._assigned_at is not None else now
        self._say(f"rebalance: states of {len(partitions)} partitions ready "
                  f"{now - since:.2f} s after the assignment, "
                  f"{now - self._revoked_at:.2f} s after the revocation")

    def first_record(self) -> None:
        """The writer handled its first command since the process started."""
        if not self._first_record:
            self._first_record = True
            self.mark("first command handled")

    def _say(self, line: str) -> None:
        if self._held is None:
            log.info(line)
        else:
            self._held.append(line)
