"""The projector against real Kafka and PostgreSQL: the read model is the fold of the event
store, exactly once, whatever the topic repeats and whatever happens to the connection."""

from __future__ import annotations

import asyncio

import psycopg

from bench.order_histories import HistoryMaker, interleaved
from oee.settings import Settings
from projections.projector import ProjectorOptions, project
from schemas.codec import Codec
from tests.integration.projection_support import (
    assert_read_model_is_the_fold,
    produce,
    projected,
    scalar,
    table_rows,
    wait_until,
)

UNTIL_END = ProjectorOptions(until_end=True)


async def test_the_read_model_is_the_fold_of_the_event_store(provisioned: Settings) -> None:
    histories = list(HistoryMaker(seed=1).orders(400))
    total = await produce(provisioned, interleaved(histories))

    stats = await project(provisioned, UNTIL_END)

    assert (stats.events, stats.duplicates, stats.rejects) == (total, 0, 0)
    assert projected(provisioned) == total
    assert_read_model_is_the_fold(provisioned, histories)


async def test_duplicates_in_the_topic_change_nothing(provisioned: Settings) -> None:
    histories = list(HistoryMaker(seed=2).orders(200))
    events = interleaved(histories)
    await produce(provisioned, events)
    await project(provisioned, UNTIL_END)
    before = table_rows(provisioned, "orders"), table_rows(provisioned, "order_events")

    # Every event again (a re-decided history after a crash), then a few once more.
    await produce(provisioned, [*events, *events[::7]])
    stats = await project(provisioned, UNTIL_END)

    assert (stats.events, stats.duplicates) == (0, len(events) + len(events[::7]))
    assert (table_rows(provisioned, "orders"), table_rows(provisioned, "order_events")) == before
    assert projected(provisioned) == 2 * len(events) + len(events[::7])


async def test_a_restarted_projector_resumes_from_its_stored_offsets(
    provisioned: Settings,
) -> None:
    histories = list(HistoryMaker(seed=3).orders(300))
    events = interleaved(histories)
    half = len(events) // 2
    await produce(provisioned, events[:half])
    first = await project(provisioned, UNTIL_END)
    await produce(provisioned, events[half:])

    second = await project(provisioned, UNTIL_END)

    assert (first.events, second.events, second.duplicates) == (half, len(events) - half, 0)
    assert_read_model_is_the_fold(provisioned, histories)


async def test_an_unreadable_record_or_a_gap_is_kept_aside_and_the_rest_projected(
    provisioned: Settings,
) -> None:
    histories = list(HistoryMaker(seed=4).orders(50))
    broken = histories[0]
    events = [e for e in interleaved(histories) if e is not broken[1]]  # seq 2 never written
    await produce(provisioned, events, values=[b"\x0e\x01not avro"])

    stats = await project(provisioned, UNTIL_END)

    assert stats.rejects == len(broken) - 2 + 1
    errors = scalar(provisioned, "select array_agg(error order by error) "
                                 "from {schema}.projection_rejects")
    assert sum("SequenceGap" in e for e in errors) == len(broken) - 2  # its later events too
    assert sum(e.startswith("undecodable") for e in errors) == 1
    assert projected(provisioned) == len(events) + 1  # the offsets moved past them all
    assert_read_model_is_the_fold(provisioned, [broken[:1], *histories[1:]])


async def test_the_projector_rides_out_lost_database_connections(provisioned: Settings) -> None:
    histories = list(HistoryMaker(seed=5).orders(1500))
    events = interleaved(histories)
    stop = asyncio.Event()
    task = asyncio.create_task(project(provisioned, ProjectorOptions(max_records=500),
                                       stop=stop))
    try:
        chunk = len(events) // 4
        for start in range(0, len(events), chunk):
            await produce(provisioned, events[start:start + chunk], Codec.load())
            await wait_until(lambda: projected(provisioned) > start, "some progress")
            cut = kill_projector_connections(provisioned)
            assert cut >= 1 or projected(provisioned) == len(events)
        await wait_until(lambda: projected(provisioned) == len(events), "the projector to catch up")
        assert not task.done(), "the projector must retry, not give up"
    finally:
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    assert stats.rejects == 0
    assert_read_model_is_the_fold(provisioned, histories)


def kill_projector_connections(settings: Settings) -> int:
    """What PostgreSQL restarting looks like to the projector: its session is gone."""
    assert settings.database_url
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (f"oee-projector:{settings.db_schema}",),
        ).fetchall()
    return len(rows)
