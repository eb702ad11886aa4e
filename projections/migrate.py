"""Versioned SQL migrations for the read model, applied in order, each exactly once per schema.

Consumes the files `projections/migrations/NNNN_name.sql` and a target schema; produces that
schema with every migration applied and one `schema_migrations` row per applied file. The SQL
files name no schema: the runner sets `search_path`, so the same files build the live schema,
a shadow schema for a rebuild, or a throwaway schema per test.

Concurrent runners on one schema are serialised by a transaction-scoped advisory lock; each
migration commits together with its `schema_migrations` row, so a failed one leaves nothing.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
Connection = psycopg.Connection[tuple[object, ...]]
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationsDiffer(Exception):
    """Two schemas that must be at the same migration level are not."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in `directory` by version; a bad name or a duplicate is an error."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must look like 0001_snake_case.sql: {path.name}")
        migrations.append(Migration(int(match["version"]), match["name"], path))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a version in {directory}: {versions}")
    return migrations


def migrate(dsn: str, schema: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the pending migrations to `schema` (created if missing); return those applied."""
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for migration in discover(directory):
            if _apply_one(conn, schema, migration):
                applied.append(migration)
    return applied


def applied_versions(dsn: str, schema: str) -> list[int]:
    """The versions recorded in `schema`.schema_migrations (empty if it has none yet)."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute(
            "select 1 from information_schema.tables"
            " where table_schema = %s and table_name = 'schema_migrations'",
            (schema,),
        ).fetchone()
        if exists is None:
            return []
        query = sql.SQL("select version from {}.schema_migrations order by version").format(
            sql.Identifier(schema)
        )
        return [row[0] for row in conn.execute(query)]


def _apply_one(conn: Connection, schema: str, migration: Migration) -> bool:
    """Apply one migration in its own transaction unless already recorded; True if applied."""
    with conn.transaction():
        _enter_schema(conn, schema)
        done = conn.execute(
            "select 1 from schema_migrations where version = %s", (migration.version,)
        ).fetchone()
        if done:
            return False
        # Without parameters psycopg sends a simple query, so a file may hold many statements.
        # Bytes, because file contents are not the LiteralString psycopg's types ask for.
        conn.execute(migration.sql().encode())
        conn.execute(
            "insert into schema_migrations (version, name) values (%s, %s)",
            (migration.version, migration.name),
        )
        return True


def _enter_schema(conn: Connection, schema: str) -> None:
    """Lock the schema against concurrent runners, create it and its ledger, and select it.

    `set local` keeps the search_path change inside this transaction.
    """
    conn.execute("select pg_advisory_xact_lock(%s)", (schema_lock_key(schema),))
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("create schema if not exists {}").format(ident))
    conn.execute(sql.SQL("set local search_path to {}").format(ident))
    conn.execute(
        "create table if not exists schema_migrations ("
        " version int primary key, name text not null,"
        " applied_at timestamptz not null default now())"
    )


def schema_lock_key(schema: str) -> int:
    """A stable 32-bit advisory-lock key per schema (hash() is salted per process).

    Held (transaction-scoped) by every migration run on `schema`; a swap holds it too, so no
    migration lands between its check of the migration levels and its commit.
    """
    return zlib.crc32(f"oee.migrate:{schema}".encode())
