"""`oee run`'s restart policy: a growing backoff, and a bound on restarts per minute."""

from __future__ import annotations

from collections import deque

from oee.run import WINDOW_S, RestartPolicy

POLICY = RestartPolicy(max_restarts=3, backoff_s=0.5)


def test_the_backoff_doubles_with_each_restart_in_the_last_minute() -> None:
    restarts: deque[float] = deque()
    delays = []
    for now in (0.0, 1.0, 2.0):
        delays.append(POLICY.delay(restarts, now))
        restarts.append(now)
    assert delays == [0.5, 1.0, 2.0]


def test_one_restart_too_many_within_a_minute_gives_up() -> None:
    restarts = deque([0.0, 10.0, 20.0])
    assert POLICY.delay(restarts, 30.0) is None


def test_restarts_older_than_a_minute_are_forgotten() -> None:
    restarts = deque([0.0, 10.0, 20.0])
    assert POLICY.delay(restarts, 10.0 + WINDOW_S + 0.1) == 1.0
    assert list(restarts) == [20.0]


def test_no_restarts_allowed_means_the_first_exit_stops_everything() -> None:
    assert RestartPolicy(max_restarts=0, backoff_s=0.5).delay(deque(), 0.0) is None
