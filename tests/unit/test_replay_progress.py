"""`oee replay`'s progress: records/s and ETA from the replayer's (read, to read) reports."""

from __future__ import annotations

from projections.cli import ReplayMeter
from projections.progress import Progress, render_bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_and_eta_follow_the_records_read() -> None:
    shown: list[Progress] = []
    clock = Clock()
    meter = ReplayMeter("orders.events", shown.append, clock)
    meter.read(0, 10_000)
    clock.now += 2.0
    meter.read(4_000, 10_000)

    last = shown[-1]
    assert (last.phase, last.projected, last.end, last.events_per_s) == (
        "replaying", 4_000, 10_000, 2_000.0)
    assert last.eta_s == 3.0
    assert "40.0%" in render_bar(last) and "2,000 ev/s" in render_bar(last)
    assert "ETA 3s" in render_bar(last)


def test_finishing_shows_every_record_done() -> None:
    shown: list[Progress] = []
    meter = ReplayMeter("orders.events", shown.append, Clock())
    meter.read(10, 25)  # the rest of the ranges held no record of the selection
    meter.finish()
    assert (shown[-1].phase, shown[-1].projected, shown[-1].fraction) == ("done", 25, 1.0)
    assert shown[-1].finished_at is not None


def test_an_empty_selection_is_done_at_once() -> None:
    shown: list[Progress] = []
    meter = ReplayMeter("orders.events", shown.append, Clock())
    meter.read(0, 0)
    meter.finish()
    assert [p.fraction for p in shown] == [1.0, 1.0]
    assert shown[-1].eta_s == 0.0
