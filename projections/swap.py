"""The schemas of a rebuild, and the atomic swap of a rebuilt read model into place.

Consumes the live read-model schema's name; produces the names of its shadow (where a rebuild
projects from offset 0) and of the previous generation (kept after a swap, for inspection or
a manual rollback, until the next rebuild), and the swap itself: ONE transaction that
  1. moves every table of the live schema that is not part of the projection (the simulated
     chain's ledger, anything a later migration adds for the stream stages) into the shadow,
     replacing the shadow's empty copies;
  2. renames live -> previous and shadow -> live.
PostgreSQL's DDL is transactional, so readers see the old read model or the new one, never a
mix. The caller holds the live projection lock exclusively meanwhile (see `store`), so no
projector batch straddles the swap; each projector notices the swap by the schema's oid and
re-reads its offsets from the new live schema.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

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
        await drop_schema(conn, previous)
        if await schema_exists(conn, live):
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
