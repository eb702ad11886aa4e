"""Real faults around a projector process: kill -9 while it works through 50,000 events, and
a PostgreSQL server that goes away and comes back. No row is lost or doubled, because rows
and offsets commit in one transaction and the projector resumes from the stored offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.order_histories import HistoryMaker, interleaved
from infra.postgres import EmbeddedPostgres
from oee.settings import Settings
from projections.migrate import migrate
from tests.conftest import session_ports
from tests.integration.projection_support import (
    ProjectorProcess,
    assert_read_model_is_the_fold,
    produce,
    projected,
    scalar,
    wait_until,
)

EVENTS = 20_000


async def test_a_projector_killed_mid_batch_resumes_without_losing_or_doubling_a_row(
    provisioned: Settings, tmp_path: Path
) -> None:
    histories = []
    maker = HistoryMaker(seed=21)
    while sum(map(len, histories)) < EVENTS:
        histories.append(maker.order())
    total = await produce(provisioned, interleaved(histories))
    log = tmp_path / "projector.log"
    # Small batches: many transactions, so each kill lands in the middle of one.
    args = ("--max-records", "1000")

    for kill_at in (total // 5, total // 2, 4 * total // 5):
        projector = ProjectorProcess(provisioned, log, *args).start()
        try:
            await wait_until(lambda: projected(provisioned) >= kill_at or not projector.alive,
                             f"the projector to pass offset {kill_at}", timeout=120)
            assert projector.alive, projector.log()
        finally:
            projector.kill()
        assert projected(provisioned) < total, "killed too late to prove anything"

    projector = ProjectorProcess(provisioned, log, *args).start()
    try:
        await wait_until(lambda: projected(provisioned) == total or not projector.alive,
                         "the restarted projector to catch up", timeout=180)
        assert projector.alive, projector.log()
    finally:
        assert projector.stop() == 0, projector.log()

    assert scalar(provisioned, "select count(*) from {schema}.order_events") == total
    assert scalar(provisioned, "select count(*) from {schema}.projection_rejects") == 0
    assert_read_model_is_the_fold(provisioned, histories)


async def test_a_postgresql_outage_is_waited_out_and_nothing_is_skipped(
    provisioned: Settings, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # A server of its own: stopping the session's would pull the rug from other tests.
    server = EmbeddedPostgres(tmp_path_factory.mktemp("outage"), session_ports()[2],
                              durable=False)
    child = server.start(die_with_parent=True)
    settings = provisioned.model_copy(update={"database_url": server.dsn})
    migrate(server.dsn, settings.db_schema)
    histories = list(HistoryMaker(seed=22).orders(1500))
    events = interleaved(histories)
    half = len(events) // 2
    projector = ProjectorProcess(settings, tmp_path / "projector.log").start()
    try:
        await produce(settings, events[:half])
        await wait_until(lambda: projected(settings) == half, "the first half", timeout=60)

        server.stop(child=child)  # the outage: the projector keeps consuming, cannot commit
        await produce(settings, events[half:])
        await wait_until(lambda: "read model unavailable" in projector.log(),
                         "the projector to notice the outage", timeout=60)
        assert projector.alive, projector.log()

        child = server.start(die_with_parent=True)
        await wait_until(lambda: projected(settings) == len(events) or not projector.alive,
                         "the projector to resume", timeout=120)
        assert projector.alive, projector.log()
        assert_read_model_is_the_fold(settings, histories)
    finally:
        projector.stop()
        server.stop(child=child)
