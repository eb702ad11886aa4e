"""What the read model knows of an order's owner and first terms: the edge's `OrderRecords`.

Consumes the read model's `orders.owner` column (migration 0005) and the `OrderAccepted` row
(`ParentAccepted` for a twap/dca parent)
of `order_events` (its payload, read back with `readmodel.event_json`); produces an order's
owner (for the 404 of another owner's order) and the fingerprint of the terms it was accepted
with (for the 422 of an idempotency key reused with other terms, on any API process and after
a restart).

An unreachable database answers differently for the two: the owner is an error (503 through
`api.errors`), since answering "unknown" would hand out another owner's order; the first
terms are "unknown" after a short wait (logged), so placing an order never depends on the
read model, and only the cross-process conflict check is lost while it is down.
"""

from __future__ import annotations

import logging
from typing import Final

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from api.deps import Owner
from api.requests import terms_fingerprint
from domain.orders.events import OrderAccepted, ParentAccepted
from readmodel.event_json import EventReader

log = logging.getLogger(__name__)

TERMS_TIMEOUT_S: Final = 0.5
_OWNER = "select owner from {} where order_id = %s"
_ACCEPTED = ("select payload, event_id, occurred_at, type from {} where order_id = %s "
             "and type in ('OrderAccepted', 'ParentAccepted') order by seq limit 1")


class ReadModelOrders:
    """`OrderRecords` answered from the read model in `schema`, on the process's pool."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._owner = sql.SQL(_OWNER).format(sql.Identifier(schema, "orders"))
        self._accepted = sql.SQL(_ACCEPTED).format(sql.Identifier(schema, "order_events"))
        self._reader = EventReader()

    async def owner_of(self, order_id: str) -> Owner | None:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(self._owner, (order_id,))
            row = await cursor.fetchone()
        return None if row is None else Owner(row[0])

    async def accepted_fingerprint(self, order_id: str) -> tuple[object, ...] | None:
        try:
            async with self._pool.connection(timeout=TERMS_TIMEOUT_S) as connection:
                cursor = await connection.execute(self._accepted, (order_id,))
                row = await cursor.fetchone()
        except psycopg.Error as exc:  # PoolTimeout included: the database is out of reach
            log.warning("read model unavailable for the first terms of %s: %r", order_id, exc)
            return None
        if row is None:
            return None
        payload, event_id, occurred_at, type_name = row
        event = self._reader.event(type_name, payload, event_id=event_id,
                                   order_id=order_id, seq=1, occurred_at=occurred_at)
        if not isinstance(event, OrderAccepted | ParentAccepted):  # the query names the types
            raise TypeError(f"order {order_id}: expected its acceptance, read {event!r}")
        return terms_fingerprint(event.terms)
