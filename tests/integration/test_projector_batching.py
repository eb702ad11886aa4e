"""The projector's batching against real Kafka and PostgreSQL: records that arrive in several
fetches are gathered into ONE transaction (rows and offsets together), a batch commits once
`batch_events` are gathered or `linger_ms` has passed, and a projector killed while it gathers
loses and doubles nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.order_histories import HistoryMaker, interleaved
from oee.settings import Settings
from projections.projector import ProjectorOptions, ProjectorStats, project
from tests.integration.projection_support import (
    ProjectorProcess,
    assert_read_model_is_the_fold,
    produce,
    projected,
    scalar,
    wait_until,
)


async def test_records_of_several_fetches_commit_in_one_transaction(
    provisioned: Settings,
) -> None:
    histories = list(HistoryMaker(seed=31).orders(60))
    events = interleaved(histories)
    thirds = [events[: len(events) // 3], events[len(events) // 3: 2 * len(events) // 3],
              events[2 * len(events) // 3:]]
    # Commits only once every event is gathered: the linger is far beyond the test.
    options = ProjectorOptions(linger_ms=600_000, batch_events=len(events))
    stop = asyncio.Event()
    task = asyncio.create_task(project(provisioned, options, stop=stop))
    try:
        for part in thirds[:2]:
            await produce(provisioned, part)  # acked: separate fetches for the projector
        assert projected(provisioned) == 0, "committed before the batch was gathered"
        await produce(provisioned, thirds[2])
        await wait_until(lambda: projected(provisioned) == len(events) or task.done(),
                         "the gathered batch to commit")
    finally:
        stop.set()
        stats: ProjectorStats = await task
    assert stats.batches == 1
    assert stats.events == len(events)
    assert_read_model_is_the_fold(provisioned, histories)


async def test_a_batch_smaller_than_batch_events_commits_after_the_linger(
    provisioned: Settings,
) -> None:
    histories = list(HistoryMaker(seed=32).orders(5))
    events = interleaved(histories)
    options = ProjectorOptions(linger_ms=200, batch_events=1_000_000)
    stop = asyncio.Event()
    task = asyncio.create_task(project(provisioned, options, stop=stop))
    try:
        await produce(provisioned, events)
        await wait_until(lambda: projected(provisioned) == len(events) or task.done(),
                         "the lingering batch to commit")
    finally:
        stop.set()
        await task
    assert_read_model_is_the_fold(provisioned, histories)


async def test_a_projector_killed_while_gathering_loses_and_doubles_nothing(
    provisioned: Settings, tmp_path: Path
) -> None:
    histories = list(HistoryMaker(seed=33).orders(400))
    events = interleaved(histories)
    half = len(events) // 2
    log = tmp_path / "projector.log"
    committed = await produce(provisioned, events[:half])
    gathering = provisioned.model_copy(update={"projector_linger_ms": 600_000,
                                               "projector_batch_events": half})
    projector = ProjectorProcess(gathering, log).start()
    try:
        # The first half commits (batch_events reached); the second half is then gathered,
        # short of batch_events, waiting for a linger that never ends before the kill.
        await wait_until(lambda: projected(provisioned) >= committed or not projector.alive,
                         "the first batch", timeout=120)
        assert projector.alive, projector.log()
        await produce(provisioned, events[half: half + half // 2])
        assert projected(provisioned) == committed
    finally:
        projector.kill()
    assert projected(provisioned) == committed

    await produce(provisioned, events[half + half // 2:])
    projector = ProjectorProcess(provisioned, log).start()  # the defaults: 100 ms, 1,000
    try:
        await wait_until(lambda: projected(provisioned) == len(events) or not projector.alive,
                         "the restarted projector to catch up", timeout=120)
        assert projector.alive, projector.log()
    finally:
        assert projector.stop() == 0, projector.log()
    assert scalar(provisioned, "select count(*) from {schema}.order_events") == len(events)
    assert_read_model_is_the_fold(provisioned, histories)
