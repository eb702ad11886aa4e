"""The worker's timeline: one line per start-up phase, timed from the process's own start, and
per rebalance from its revocation (`streams.timeline`, issue 10 "fast takeover")."""

from __future__ import annotations

import logging
import os
import time

import pytest

from streams.timeline import Timeline, process_started_at, started_at_from_proc


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "streams.timeline"]


def test_the_start_is_read_after_the_command_name_whatever_it_holds() -> None:
    # Field 22 is 500 ticks (5.00 s after boot at 100 ticks/s); the machine is up 12.5 s.
    stat = "4242 (python -m (odd) name) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0"

    started = started_at_from_proc(stat, "12.50 99.0", 100, now=1000.0)

    assert started == pytest.approx(992.5)


def test_this_process_started_before_now_and_not_in_the_future() -> None:
    started = process_started_at()

    assert started <= time.time()
    if os.path.exists("/proc/self/stat"):  # a pytest process is seconds old, not zero
        assert started < time.time() - 0.01


def test_phases_before_logging_is_configured_are_held_then_logged_with_their_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "streams.timeline")
    clock = Clock(100.0)
    timeline = Timeline(started_at=98.0, clock=clock, cpu=Clock(1.25))

    timeline.mark("imports done")
    clock.now = 100.5
    timeline.mark("schemas registered")
    assert lines(caplog) == []

    timeline.flush()
    clock.now = 101.0
    timeline.assigned([0, 1], new=[0, 1])

    assert lines(caplog) == [
        "start-up: imports done at +2.00 s (2.00 s; cpu 1.25 s)",
        "start-up: schemas registered at +2.50 s (0.50 s; cpu 1.25 s)",
        "start-up: joined the group, 2 partitions of orders.commands assigned (2 new: [0, 1], "
        "0 kept) at +3.00 s (0.50 s; cpu 1.25 s)",
    ]


def test_a_rebalance_is_timed_from_its_revocation(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "streams.timeline")
    clock = Clock(10.0)
    timeline = Timeline(started_at=10.0, clock=clock, cpu=Clock(0.5))
    timeline.flush()
    timeline.revoked()  # the empty revocation before the first join is part of the start-up
    timeline.assigned([0], new=[0])
    clock.now = 11.0
    timeline.ready([0])

    clock.now = 20.0
    timeline.revoked()
    clock.now = 20.25
    timeline.assigned([0, 1], new=[1])
    clock.now = 21.0
    timeline.ready([0, 1])

    assert lines(caplog)[-3:] == [
        "start-up: states of 1 partitions ready at +1.00 s (1.00 s; cpu 0.50 s)",
        "rebalance: 2 partitions of orders.commands assigned (1 new: [1], 1 kept) 0.25 s "
        "after the revocation",
        "rebalance: states of 2 partitions ready 0.75 s after the assignment, 1.00 s after "
        "the revocation",
    ]


def test_only_the_first_command_is_a_phase(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "streams.timeline")
    timeline = Timeline(started_at=0.0, clock=Clock(1.0), cpu=Clock(0.75))
    timeline.flush()

    timeline.first_record()
    timeline.first_record()

    assert lines(caplog) == ["start-up: first command handled at +1.00 s (1.00 s; cpu 0.75 s)"]
