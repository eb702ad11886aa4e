"""The schema registry's storage: subjects, versions and global schema ids in PostgreSQL.

Consumes a PostgreSQL DSN (the read model's database; its own schema `schema_registry`);
produces ids that stay stable across restarts and are shared by every process that asks
the registry. One schema text has one id whichever subjects hold it (as Confluent's registry
does); a registration takes a transaction-scoped advisory lock, so two processes registering
at once get the same id and contiguous versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from psycopg_pool import ConnectionPool

from schemas.compat import incompatibilities

DEFAULT_COMPATIBILITY: Final = "BACKWARD"
LEVELS: Final = frozenset({"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                           "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"})
_LOCK: Final = 0x0EE5C4E4A  # the advisory lock key of registrations
# Give up on an unreachable database well before the launcher stops waiting, so the process
# exits and the launcher reports that (pointing at the log) instead of a silent time-out.
OPEN_TIMEOUT_S: Final = 10.0

_DDL: Final = """
create schema if not exists schema_registry;
create table if not exists schema_registry.schemas (
    id serial primary key,
    body text not null
);
-- One id per text, checked on a digest: a unique btree on the text itself refuses a schema
-- over 2704 bytes after compression (order_event v5 came within 40 bytes of it).
alter table schema_registry.schemas drop constraint if exists schemas_body_key;
create unique index if not exists schemas_body_digest
    on schema_registry.schemas (md5(body));
create table if not exists schema_registry.versions (
    subject text not null,
    version int not null,
    schema_id int not null references schema_registry.schemas (id),
    primary key (subject, version),
    unique (subject, schema_id)
);
create table if not exists schema_registry.config (
    subject text primary key,
    compatibility text not null
);
"""


class Incompatible(ValueError):
    """The schema breaks the subject's compatibility level (the reasons are the message)."""


@dataclass(frozen=True, slots=True)
class Version:
    subject: str
    version: int
    schema_id: int
    schema: str


def normalised(schema_text: str) -> str:
    """One text per schema: the JSON with sorted keys and no spaces (so a re-registration
    with other whitespace or key order finds the same id)."""
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


class RegistryStore:
    def __init__(self, dsn: str) -> None:
        self._pool = ConnectionPool(dsn, min_size=1, max_size=4, open=False)

    def open(self) -> None:
        self._pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
        with self._pool.connection() as conn:
            conn.execute("select pg_advisory_lock(%s)", (_LOCK,))
            try:
                conn.execute(_DDL)
                conn.commit()
            finally:
                conn.execute("select pg_advisory_unlock(%s)", (_LOCK,))
                conn.commit()

    def close(self) -> None:
        self._pool.close()

    def register(self, subject: str, body: str) -> int:
        """The id of `body` under `subject`; a new version if the subject lacks it."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK,))
            row = conn.execute(
                "select schema_id from schema_registry.versions v join schema_registry.schemas s"
                " on s.id = v.schema_id where v.subject = %s and s.body = %s", (subject, body)
            ).fetchone()
            if row is not None:
                return int(row[0])
            latest = self._latest(conn, subject)
            if latest is not None:
                reasons = self._reasons(conn, subject, body, latest.schema)
                if reasons:
                    raise Incompatible("; ".join(reasons))
            conn.execute("insert into schema_registry.schemas (body) values (%s) "
                         "on conflict ((md5(body))) do nothing", (body,))
            schema_id = int(_one(conn, "select id from schema_registry.schemas "
                                       "where md5(body) = md5(%s) and body = %s", body, body))
            conn.execute("insert into schema_registry.versions values (%s, %s, %s)",
                         (subject, (latest.version if latest else 0) + 1, schema_id))
            return schema_id

    def subjects(self) -> list[str]:
        with self._pool.connection() as conn:
            rows = conn.execute("select distinct subject from schema_registry.versions "
                                "order by subject").fetchall()
        return [str(row[0]) for row in rows]

    def versions(self, subject: str) -> list[int]:
        with self._pool.connection() as conn:
            rows = conn.execute("select version from schema_registry.versions where subject = %s"
                                " order by version", (subject,)).fetchall()
        return [int(row[0]) for row in rows]

    def version(self, subject: str, version: int | None) -> Version | None:
        """One version of a subject (None: the latest), or None if there is no such."""
        with self._pool.connection() as conn:
            if version is None:
                return self._latest(conn, subject)
            row = conn.execute(
                "select v.version, s.id, s.body from schema_registry.versions v join "
                "schema_registry.schemas s on s.id = v.schema_id where v.subject = %s "
                "and v.version = %s", (subject, version)).fetchone()
        return None if row is None else Version(subject, int(row[0]), int(row[1]), str(row[2]))

    def schema(self, schema_id: int) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute("select body from schema_registry.schemas where id = %s",
                               (schema_id,)).fetchone()
        return None if row is None else str(row[0])

    def compatibility(self, subject: str | None) -> str:
        with self._pool.connection() as conn:
            return self._level(conn, subject)

    def set_compatibility(self, subject: str | None, level: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("insert into schema_registry.config values (%s, %s) on conflict "
                         "(subject) do update set compatibility = excluded.compatibility",
                         (subject or "", level))

    def incompatibilities(self, subject: str, body: str, against: Version) -> list[str]:
        """Why `body` breaks the subject's level against `against` (empty: it does not)."""
        with self._pool.connection() as conn:
            return self._reasons(conn, subject, body, against.schema)

    def _reasons(self, conn: Any, subject: str, body: str, existing: str) -> list[str]:
        level = self._level(conn, subject)
        new, old = json.loads(body), json.loads(existing)
        reasons: list[str] = []
        if level.startswith(("BACKWARD", "FULL")):
            reasons += incompatibilities(new, old)
        if level.startswith(("FORWARD", "FULL")):
            reasons += incompatibilities(old, new)
        return reasons

    def _level(self, conn: Any, subject: str | None) -> str:
        rows = conn.execute("select subject, compatibility from schema_registry.config "
                            "where subject in (%s, '')", (subject or "",)).fetchall()
        levels = dict(rows)
        return str(levels.get(subject or "", levels.get("", DEFAULT_COMPATIBILITY)))

    def _latest(self, conn: Any, subject: str) -> Version | None:
        row = conn.execute(
            "select v.version, s.id, s.body from schema_registry.versions v join "
            "schema_registry.schemas s on s.id = v.schema_id where v.subject = %s "
            "order by v.version desc limit 1", (subject,)).fetchone()
        return None if row is None else Version(subject, int(row[0]), int(row[1]), str(row[2]))


def _one(conn: Any, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]
