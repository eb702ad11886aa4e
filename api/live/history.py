"""Catch-up reads of one order's history from the read model's `order_events` table.

Consumes the table of docs/DESIGN.md (written by the projector, one row per event with the
order's status after it and the event's Kafka coordinates); produces `OrderMessage`s equal to
the ones the fan-out builds live. The payload is spliced in as the JSON text PostgreSQL
returns (an orjson Fragment): it is never parsed here.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.live.messages import OrderMessage, encode
from domain.orders.status import OrderStatus

_OWNER = "select owner from {}.orders where order_id = %s"
_EVENTS_FROM = """
    select seq, type, status, payload::text, occurred_at, partition, "offset"
      from {}.order_events
     where order_id = %s and seq >= %s
     order by seq
"""



class ReadModelUnavailable(Exception):
    """The catch-up query failed (database down, or the table not migrated yet)."""


Row = tuple[int, str, str | None, str, datetime, int | None, int | None]


class OrderHistory:
    """The read model, as the streams need it: an order's events from a seq on.

    Reads through the process's one pool (the bootstrap's); a database that is down fails
    the catch-up query (`ReadModelUnavailable`), not the stream's live part."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._events_from = sql.SQL(_EVENTS_FROM).format(sql.Identifier(schema))
        self._owner = sql.SQL(_OWNER).format(sql.Identifier(schema))

    async def owner_of(self, order_id: str) -> tuple[str | None] | None:
        """(the order's owner,) as the read model knows it, or None if it does not."""
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(self._owner, (order_id,))
                row = await cursor.fetchone()
        except PoolTimeout as error:
            raise ReadModelUnavailable(f"no read-model connection: {error}") from error
        except psycopg.Error as error:
            raise ReadModelUnavailable(f"read model: {error}") from error
        return None if row is None else (row[0],)

    async def events_from(self, order_id: str, first_seq: int) -> list[OrderMessage]:
        """Every stored event of `order_id` with seq >= `first_seq`, in seq order."""
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(self._events_from, (order_id, first_seq))
                rows: list[Row] = await cursor.fetchall()
        except PoolTimeout as error:
            raise ReadModelUnavailable(f"no read-model connection: {error}") from error
        except psycopg.Error as error:
            raise ReadModelUnavailable(f"read model: {error}") from error
        return [_message(order_id, row) for row in rows]


def _message(order_id: str, row: Row) -> OrderMessage:
    seq, type_name, status_text, payload, occurred_at, partition, offset = row
    status = OrderStatus(status_text) if status_text else None
    text = encode(order_id, status, type_name, seq, occurred_at, orjson.Fragment(payload))
    return OrderMessage(order_id, seq, type_name, status, text,
                        -1 if partition is None else partition, -1 if offset is None else offset)
