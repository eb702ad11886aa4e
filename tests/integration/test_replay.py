"""`oee replay` reads straight from Kafka: one order, a time range or everything, in order,
with coordinates, and fails (exit 1) on a gap or an event out of order."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from datetime import datetime
from typing import Any

import orjson
import pytest

from bench.order_histories import HistoryMaker, interleaved
from oee.settings import Settings
from projections.cli import add_replay_arguments, replay_main
from projections.replay import _partition_of
from tests.integration.projection_support import produce


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    return parser.parse_args(argv)


async def replay(settings: Settings, capsys: pytest.CaptureFixture[str],
                 *argv: str) -> tuple[int, list[str]]:
    """Run the CLI function as `oee replay` would (its own event loop, in a thread)."""
    code = await asyncio.to_thread(replay_main, settings, parse(*argv))
    return code, capsys.readouterr().out.splitlines()


def json_lines(lines: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                          dict[str, Any]]:
    parsed = [orjson.loads(line) for line in lines]
    events = [line for line in parsed if "orderId" in line]
    findings = [line["finding"] for line in parsed if "finding" in line]
    summary = next(line["summary"] for line in parsed if "summary" in line)
    return events, findings, summary


async def test_one_order_replays_in_seq_order_from_its_own_partition(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    histories = list(HistoryMaker(seed=41).orders(60))
    await produce(provisioned, interleaved(histories))
    history = max(histories, key=len)

    code, lines = await replay(provisioned, capsys, "--order", history[0].order_id,
                               "--format", "json")

    events, findings, summary = json_lines(lines)
    assert code == 0 and findings == []
    assert [(e["seq"], e["type"], e["eventId"]) for e in events] == [
        (e.seq, type(e).__name__, e.event_id) for e in history]
    home = _partition_of(history[0].order_id, list(range(provisioned.partitions)))
    assert {(e["topic"], e["partition"]) for e in events} == {(provisioned.topics.events, home)}
    assert [e["offset"] for e in events] == sorted(e["offset"] for e in events)
    assert summary == {"events": len(history), "orders": 1, "findings": 0, "failures": 0}


async def test_everything_replays_once_and_passes_the_audit(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    histories = list(HistoryMaker(seed=42).orders(80))
    total = await produce(provisioned, interleaved(histories))

    code, lines = await replay(provisioned, capsys, "--all", "--format", "json")

    events, findings, summary = json_lines(lines)
    assert code == 0 and findings == []
    assert sorted(e["eventId"] for e in events) == sorted(
        e.event_id for h in histories for e in h)
    assert summary["events"] == total and summary["orders"] == len(histories)
    coordinates = [(e["partition"], e["offset"]) for e in events]
    assert coordinates == sorted(coordinates)  # partition by partition, in offset order


async def test_a_time_range_replays_the_events_recorded_in_it(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    events = interleaved(HistoryMaker(seed=43).orders(100))
    await produce(provisioned, events)
    start = events[len(events) // 3].occurred_at
    end = events[2 * len(events) // 3].occurred_at
    # Kafka keeps record times in milliseconds: the range is [from, to) at that resolution.
    inside = {e.event_id for e in events if _ms(start) <= _ms(e.occurred_at) < _ms(end)}

    code, lines = await replay(provisioned, capsys, "--from", start.isoformat(),
                               "--to", end.isoformat(), "--format", "json")

    replayed, findings, _ = json_lines(lines)
    assert code == 0 and findings == []  # a range may start in the middle of a history
    assert {e["eventId"] for e in replayed} == inside


async def test_a_gap_fails_the_replay_and_is_named(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    histories = list(HistoryMaker(seed=44).orders(20))
    broken = max(histories, key=len)
    await produce(provisioned, [e for e in interleaved(histories) if e is not broken[2]])

    code, lines = await replay(provisioned, capsys, "--order", broken[0].order_id)
    assert code == 1
    assert any(line.startswith(f"GAP: order {broken[0].order_id} seq 4") for line in lines)
    assert lines[-1].endswith("FAILED")

    code, lines = await replay(provisioned, capsys, "--all")
    assert code == 1


async def test_out_of_order_and_conflicting_events_fail_but_redeliveries_do_not(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    redelivered, reordered, conflicting = HistoryMaker(seed=45).orders(3)
    await produce(provisioned, [*redelivered, *redelivered[2:4]])
    await produce(provisioned, [reordered[0], reordered[2], reordered[1]])
    await produce(provisioned, [*conflicting[:2], dataclasses.replace(conflicting[1],
                                                                      event_id="not-the-same")])
    outcomes = {}
    for history in (redelivered, reordered, conflicting):
        code, lines = await replay(provisioned, capsys, "--order", history[0].order_id,
                                   "--format", "json")
        outcomes[history[0].order_id] = (code, [f["kind"] for f in json_lines(lines)[1]])

    assert outcomes[redelivered[0].order_id] == (0, ["duplicate", "duplicate"])
    assert outcomes[reordered[0].order_id] == (1, ["gap", "out_of_order"])
    assert outcomes[conflicting[0].order_id] == (1, ["conflict"])


async def test_to_without_from_is_a_usage_error(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse("--order", "x", "--from", "2025-01-01")  # one selection only
    code, _ = await replay(provisioned, capsys, "--all", "--to", "2025-01-01")
    assert code == 2



def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def test_the_replay_shows_its_progress_on_stderr_and_ends_at_every_record(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    total = await produce(provisioned, interleaved(list(HistoryMaker(seed=5).orders(20))))

    code = await asyncio.to_thread(replay_main, provisioned, parse("--all"))

    bars = capsys.readouterr().err.splitlines()
    assert code == 0
    assert bars[0].startswith("[") and bars[0].endswith("replaying")
    assert f"100.0%  {total:,}/{total:,}" in bars[-1] and bars[-1].endswith("ETA 0s  done")
    assert "ev/s" in bars[-1]
