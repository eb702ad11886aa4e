"""A rebuild projects the event store from offset 0 into a shadow schema while the live read
model keeps serving and projecting, then swaps it in atomically: the rebuilt model equals
the incrementally built one row for row, and the live projector carries on in it."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import psycopg
import pytest
from psycopg import sql

from bench.order_histories import HistoryMaker, interleaved
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from projections.cli import add_projections_arguments, projections_main
from projections.progress import Progress
from projections.projector import ProjectorOptions, project
from projections.rebuild import RebuildOptions, rebuild
from projections.swap import previous_schema, shadow_schema
from tests.conftest import drop_schema
from tests.integration.projection_support import (
    assert_read_model_is_the_fold,
    produce,
    projected,
    scalar,
    table_rows,
    wait_until,
)

# Swap as soon as the workers are done: the final catch-up under the lock then has work to do.
OPTIONS = RebuildOptions(workers=2, catch_up_lag=1_000_000, poll_s=0.2)


@pytest.fixture
def read_model(provisioned: Settings) -> Iterator[Settings]:
    """`provisioned`, and the rebuild's extra schemas dropped afterwards."""
    yield provisioned
    assert provisioned.database_url
    for schema in (shadow_schema(provisioned.db_schema), previous_schema(provisioned.db_schema)):
        drop_schema(provisioned.database_url, schema)


@pytest.fixture
async def live_projector(read_model: Settings) -> AsyncIterator[asyncio.Task[object]]:
    """The live projector, running all along (small batches: an incremental build)."""
    stop = asyncio.Event()
    task = asyncio.create_task(project(read_model, ProjectorOptions(max_records=300), stop=stop))
    yield task
    stop.set()
    await asyncio.wait_for(task, 30)


def index_definitions(settings: Settings, schema: str) -> set[tuple[str, str]]:
    """Every index of the projection tables of `schema`, its name taken out of them."""
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "select indexname, indexdef from pg_indexes where schemaname = %s "
            "and tablename in ('orders', 'order_events')", (schema,)).fetchall()
    found = {(name, definition.replace(f"{schema}.", "")) for name, definition in rows}
    assert len(found) >= 9, found  # migrations 0003: 6 query indexes and 3 of constraints
    return found


async def caught_up(settings: Settings, total: int) -> None:
    await wait_until(lambda: projected(settings) == total, f"the projection of {total} events")


async def test_a_rebuilt_read_model_equals_the_incrementally_built_one_row_for_row(
    read_model: Settings, live_projector: asyncio.Task[object]
) -> None:
    settings = read_model
    histories = list(HistoryMaker(seed=51).orders(1200))
    events = interleaved(histories)
    total = 0
    for start in range(0, len(events), 1000):  # in chunks, with redeliveries in between
        chunk = events[start:start + 1000]
        total += await produce(settings, [*chunk, *chunk[::9]])
        await caught_up(settings, total)
    incremental = table_rows(settings, "orders"), table_rows(settings, "order_events")
    ledger_row = add_chain_transaction(settings)

    final = await rebuild(settings, OPTIONS)

    assert final.phase == "done" and final.projected == total
    assert (table_rows(settings, "orders"), table_rows(settings, "order_events")) == incremental
    assert scalar(settings, "select order_id from {schema}.sim_chain_transactions") == ledger_row
    assert scalar(settings, "select count(*) from {schema}.orders",
                  schema=previous_schema(settings.db_schema)) == len(histories)
    # The query indexes the bulk load went without were built again, exactly as migrated.
    assert index_definitions(settings, settings.db_schema) == index_definitions(
        settings, previous_schema(settings.db_schema))
    # The live projector noticed the swap and projects into the new schema.
    more = list(HistoryMaker(seed=52).orders(200))
    total += await produce(settings, interleaved(more))
    await caught_up(settings, total)
    assert not live_projector.done()
    assert_read_model_is_the_fold(settings, histories + more)


async def test_a_rebuild_while_events_keep_arriving_loses_and_doubles_nothing(
    read_model: Settings, live_projector: asyncio.Task[object]
) -> None:
    settings = read_model
    histories = list(HistoryMaker(seed=53).orders(2400))
    events = interleaved(histories)
    first = await produce(settings, events[:8000])
    await caught_up(settings, first)
    progress: list[Progress] = []

    async def keep_producing() -> int:
        produced = 0
        for start in range(8000, len(events), 500):
            produced += await produce(settings, events[start:start + 500])
            await asyncio.sleep(0.05)  # a steady trickle, not a pause for a condition
        return produced

    producer = asyncio.create_task(keep_producing())
    final = await rebuild(settings, OPTIONS, progress.append)
    total = first + await producer

    await caught_up(settings, total)
    assert_read_model_is_the_fold(settings, histories)
    phases = [p.phase for p in progress]
    assert phases[0] == "preparing" and phases[-1] == "done" == final.phase
    assert phases.index("catching_up") < phases.index("finishing") < phases.index("swapping")
    assert any(p.events_per_s > 0 for p in progress)
    assert not await schema_exists(settings, shadow_schema(settings.db_schema))


async def test_the_api_starts_a_rebuild_once_and_reports_its_progress(
    read_model: Settings, live_projector: asyncio.Task[object]
) -> None:
    settings = read_model
    histories = list(HistoryMaker(seed=54).orders(800))
    total = await produce(settings, interleaved(histories))
    await caught_up(settings, total)
    app = bootstrap(settings, Replacements(rebuild=OPTIONS))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        started = await client.post("/api/projections/rebuild")
        again = await client.post("/api/projections/rebuild")
        assert started.status_code == 202, started.text
        assert again.status_code == 409
        assert again.json()["error"] == "rebuild_running"

        async def done() -> bool:
            status = (await client.get("/api/projections/status")).json()
            return bool(status["rebuild"] and status["rebuild"]["phase"] == "done")

        await wait_until(done, "the rebuild to finish", timeout=120)
        status = (await client.get("/api/projections/status")).json()
        assert status["live"]["lag"] == 0 and status["live"]["projected"] == total
        assert status["rebuild"]["projected"] == total and status["rebuild"]["percent"] == 100
        assert (await client.get("/ready")).status_code == 200
    assert_read_model_is_the_fold(settings, histories)


def add_chain_transaction(settings: Settings) -> str:
    """A row of the simulated chain: not the projection's, so a swap must carry it over."""
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(sql.SQL(
            "insert into {} (signature, order_id, attempt, min_amount_out, submitted_at, "
            "lands_at, status) values ('sig', 'chain-order', 1, 1, now(), now(), 'pending')"
        ).format(sql.Identifier(settings.db_schema, "sim_chain_transactions")))
    return "chain-order"


async def schema_exists(settings: Settings, schema: str) -> bool:
    return bool(scalar(settings, "select count(*) from pg_namespace where nspname = %s",
                       (schema,)))



async def test_the_cli_rebuilds_with_a_progress_bar_and_reports_the_status(
    read_model: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = read_model
    histories = list(HistoryMaker(seed=55).orders(300))
    total = await produce(settings, interleaved(histories))
    parser = argparse.ArgumentParser()
    add_projections_arguments(parser)

    code = await asyncio.to_thread(projections_main, settings,
                                   parser.parse_args(["rebuild", "--workers", "2"]))

    output = capsys.readouterr()
    assert code == 0, output.err
    assert f"rebuilt {settings.db_schema}: {total:,} events" in output.out
    assert "[##############################] 100.0%" in output.err  # the bar, at the end
    code = await asyncio.to_thread(projections_main, settings, parser.parse_args(["status"]))
    status = orjson.loads(capsys.readouterr().out)
    assert code == 0
    assert (status["live"]["lag"], status["live"]["projected"], status["rebuild"]) == (0, total,
                                                                                      None)
    assert_read_model_is_the_fold(settings, histories)
