"""A swap carries live's non-projection tables (the simulated chain's ledger) into the rebuilt
schema, whose `schema_migrations` then becomes live's record: that record must stay true for
the carried tables too, or a later migration touching them is skipped.

Real PostgreSQL and Kafka. A migrations directory of its own (the real files plus one that
alters the ledger) stands for code that ships a new migration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.order_histories import HistoryMaker, interleaved
from oee.settings import Settings
from projections.migrate import (
    MIGRATIONS_DIR,
    MigrationsDiffer,
    applied_versions,
    discover,
    migrate,
)
from projections.rebuild import RebuildOptions, rebuild
from projections.swap import previous_schema, shadow_schema, swap
from tests.conftest import drop_schema
from tests.integration.projection_support import produce, scalar

SHIPPED = [migration.version for migration in discover()]
NEWER = max(SHIPPED) + 1  # the test's own migration comes after whatever ships
LEDGER_MIGRATION = """\
alter table sim_chain_transactions add column note text not null default 'carried';
"""


@pytest.fixture
def newer_migrations(tmp_path: Path) -> Path:
    """The shipped migrations and a newer one that alters the carried ledger table."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    (directory / f"{NEWER:04d}_ledger_note.sql").write_text(LEDGER_MIGRATION)
    return directory


@pytest.fixture
def read_model(provisioned: Settings) -> Iterator[Settings]:
    """`provisioned` (live migrated with the shipped files); rebuild schemas dropped after."""
    yield provisioned
    assert provisioned.database_url
    for schema in (shadow_schema(provisioned.db_schema), previous_schema(provisioned.db_schema)):
        drop_schema(provisioned.database_url, schema)


def add_ledger_row(settings: Settings) -> None:
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(psycopg.sql.SQL(
            "insert into {} (signature, order_id, attempt, min_amount_out, submitted_at, "
            "lands_at, status) values ('sig-1', 'chain-order', 1, 1, now(), now(), 'pending')"
        ).format(psycopg.sql.Identifier(settings.db_schema, "sim_chain_transactions")))


def ledger_columns(settings: Settings, schema: str) -> set[str]:
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = 'sim_chain_transactions'", (schema,)
        ).fetchall()
    return {name for (name,) in rows}


async def test_a_swap_refuses_a_shadow_migrated_differently_and_changes_nothing(
    read_model: Settings, newer_migrations: Path
) -> None:
    settings, dsn = read_model, read_model.database_url
    assert dsn
    live, shadow = settings.db_schema, shadow_schema(settings.db_schema)
    add_ledger_row(settings)
    migrate(dsn, shadow, newer_migrations)

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        with pytest.raises(MigrationsDiffer, match=f"{NEWER:04d}"):
            await swap(conn, live, shadow)

    assert applied_versions(dsn, live) == SHIPPED
    assert applied_versions(dsn, shadow) == [*SHIPPED, NEWER]
    assert scalar(settings, "select order_id from {schema}.sim_chain_transactions") == \
        "chain-order"
    assert applied_versions(dsn, previous_schema(live)) == []  # no previous generation made


async def test_a_rebuild_shipping_a_ledger_migration_leaves_the_ledger_migrated(
    read_model: Settings, newer_migrations: Path
) -> None:
    settings, dsn = read_model, read_model.database_url
    assert dsn
    total = await produce(settings, interleaved(list(HistoryMaker(seed=71).orders(50))))
    add_ledger_row(settings)

    final = await rebuild(settings, RebuildOptions(workers=1, migrations=newer_migrations))

    assert final.phase == "done" and final.projected == total
    live = settings.db_schema
    assert applied_versions(dsn, live) == [*SHIPPED, NEWER]
    # The record is true for the carried table: the newer column is there, on the carried row.
    assert "note" in ledger_columns(settings, live)
    assert scalar(settings, "select note from {schema}.sim_chain_transactions"
                            " where order_id = 'chain-order'") == "carried"
    assert migrate(dsn, live, newer_migrations) == []
