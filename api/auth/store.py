"""The `api_keys` table of the read model's schema (migration 0005): create, list, revoke, find.

Consumes a DSN (the CLI, `oee run`) or the API's pool; produces stored keys. Only the HMAC of a
key is written (`api.auth.keys.secret_hash`); `create_key` returns the key text once, to be
shown once. Revocation sets `revoked_at`; the API's key cache (`api.auth.guard`) re-reads a key
at least every AUTH_KEY_CACHE_S, so a revoked key is refused everywhere within that time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from api.auth.keys import Scope, key_text, secret_hash

_FIND = "select scope, secret_hash, revoked_at is not null from {} where key_id = %s"
_CREATE = "insert into {} (key_id, name, scope, secret_hash) values (%s, %s, %s, %s)"
_LIST = "select key_id, name, scope, created_at, revoked_at from {} order by created_at"
_REVOKE = "update {} set revoked_at = now() where key_id = %s and revoked_at is null"
_EXISTS = "select revoked_at is not null from {} where key_id = %s"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What the API needs to check a presented key."""

    scope: Scope
    secret_hash: bytes
    revoked: bool


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as `oee keys list` shows it (no secret, no hash)."""

    key_id: str
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    text: str  # shown once; never stored


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "api_keys")


def create_key(dsn: str, schema: str, server_secret: bytes, name: str, scope: Scope) -> NewKey:
    if not name.strip():
        raise ValueError("a key needs a name")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(_CREATE).format(_table(schema)),
                     (key_id, name, scope.value, secret_hash(server_secret, key_id, secret)))
    return NewKey(key_id, key_text(key_id, secret))


def list_keys(dsn: str, schema: str) -> list[KeyInfo]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(sql.SQL(_LIST).format(_table(schema))).fetchall()
    return [KeyInfo(key_id, name, Scope(scope), created, revoked)
            for key_id, name, scope, created, revoked in rows]


def revoke_key(dsn: str, schema: str, key_id: str) -> bool:
    """True if the key was live and is now revoked; False if unknown or revoked already."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql.SQL(_REVOKE).format(_table(schema)), (key_id,))
        return cursor.rowcount == 1


def find_key(dsn: str, schema: str, key_id: str) -> StoredKey | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql.SQL(_FIND).format(_table(schema)), (key_id,)).fetchone()
    return None if row is None else StoredKey(Scope(row[0]), bytes(row[1]), bool(row[2]))


class PoolKeys:
    """The API's lookups, through the process's one read-model pool."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._find = sql.SQL(_FIND).format(_table(schema))

    async def find(self, key_id: str) -> StoredKey | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(self._find, (key_id,))
            row = await cursor.fetchone()
        return None if row is None else StoredKey(Scope(row[0]), bytes(row[1]), bool(row[2]))
