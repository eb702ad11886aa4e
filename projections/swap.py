"""The schemas of a rebuild, and the atomic swap of a rebuilt read model into place.

Consumes the live read-model schema's name; produces the names of its shadow (where a rebuild
projects from offset 0) and of the previous generation (kept after a swap, for inspection or
a manual rollback, until the next rebuild), and the swap itself: ONE transaction that
  1. moves every table of the live schema that is not part of the projection (the simulated
     chain's ledger, anything a later migration adds for the stream stages) into the shadow,
     replacing the shadow's empty copies;
  2. renames live -> previous and shadow -> live.
PostgreSQL's DDL is transactional, so readers see the old read model or the new one, never a
mix. The shadow's `schema_migrations` becomes live's record, while the carried tables keep
live's migration level: so the swap refuses (MigrationsDiffer, nothing changed) unless both
schemas record the same migrations, and the rebuild migrates live first to make them equal.
The caller holds the live projection lock exclusively meanwhile (see `store`), so no projector
batch straddles the swap; each projector notices the swap by the schema's oid and re-reads
its offsets from the new live schema.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from projections.migrate import MigrationsDiffer, schema_lock_key
from projections.store import projection_lock_key

# The tables a projection owns: rebuilt from the topic, never carried over.
PROJECTION_TABLES: Final = frozenset(
    {"orders", "order_events", "projection_offsets", "projection_rejects", "schema_migrations"}
)
Connection = psycopg.AsyncConnection[Any]


def shadow_schema(live: str) -> str:
    return f"{live}__shadow"


def previous_schema(live: str) -> str:
    return f"{live}__previous"


async def schema_exists(conn: Connection, schema: str) -> bool:
    cur = await conn.execute("select 1 from pg_namespace where nspname = %s", (schema,))
    return await cur.fetchone() is not None


async def drop_schema(conn: Connection, schema: str) -> None:
    await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


async def lock_projection(conn: Connection, live: str) -> None:
    """Block every projector batch on `live` until `unlock_projection` (session lock)."""
    await conn.execute("select pg_advisory_lock(%s)", (projection_lock_key(live),))


async def unlock_projection(conn: Connection, live: str) -> None:
    await conn.execute("select pg_advisory_unlock(%s)", (projection_lock_key(live),))


async def swap(conn: Connection, live: str, shadow: str) -> None:
    """Put `shadow` in place of `live` atomically; the old live becomes `previous_schema`."""
    previous = previous_schema(live)
    async with conn.transaction():
        live_exists = await schema_exists(conn, live)
        if live_exists:
            await _require_same_migrations(conn, live, shadow)
        await drop_schema(conn, previous)
        if live_exists:
            for table in await _carried_tables(conn, live):
                await conn.execute(sql.SQL("drop table if exists {}").format(
                    sql.Identifier(shadow, table)))
                await conn.execute(sql.SQL("alter table {} set schema {}").format(
                    sql.Identifier(live, table), sql.Identifier(shadow)))
            await conn.execute(sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(live), sql.Identifier(previous)))
        await conn.execute(sql.SQL("alter schema {} rename to {}").format(
            sql.Identifier(shadow), sql.Identifier(live)))


async def _carried_tables(conn: Connection, schema: str) -> list[str]:
    """The tables of `schema` that are not the projection's own."""
    cur = await conn.execute(
        "select tablename from pg_tables where schemaname = %s order by tablename", (schema,)
    )
    return [name for (name,) in await cur.fetchall() if name not in PROJECTION_TABLES]


async def _require_same_migrations(conn: Connection, live: str, shadow: str) -> None:
    """Fail unless `live` and `shadow` record the same migrations (locked until commit)."""
    await conn.execute("select pg_advisory_xact_lock(%s)", (schema_lock_key(live),))
    in_live = set(await _recorded_versions(conn, live))
    in_shadow = set(await _recorded_versions(conn, shadow))
    if in_live != in_shadow:
        raise MigrationsDiffer(
            f"cannot swap {shadow} into {live}: their migrations differ (only in {live}: "
            f"{_versions(in_live - in_shadow)}; only in {shadow}: "
            f"{_versions(in_shadow - in_live)}). Migrate {live} with the rebuilding code first"
        )


async def _recorded_versions(conn: Connection, schema: str) -> list[int]:
    cur = await conn.execute(
        "select 1 from pg_tables where schemaname = %s and tablename = 'schema_migrations'",
        (schema,),
    )
    if await cur.fetchone() is None:
        return []
    cur = await conn.execute(sql.SQL("select version from {}").format(
        sql.Identifier(schema, "schema_migrations")))
    return [int(version) for (version,) in await cur.fetchall()]


def _versions(versions: set[int]) -> str:
    return ", ".join(f"{version:04d}" for version in sorted(versions)) or "none"
