"""What the read model says an order's status is: the edge's `OrderStatuses` port.

Consumes the `orders` table of the read model (docs/DESIGN.md; the projector writes it) with
one read-only query per cancel request, on the process's one pool; produces the order's
status, or None when the read model does not know the order. The cancel route refuses with
409 what can no longer be cancelled; everything else still goes to the order agent, which
decides for good. So an unreachable database degrades to "unknown" (the agent decides)
instead of failing the cancel, after a short wait: a cancel must not hang on the read model.
"""

from __future__ import annotations

import logging
from typing import Final

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from domain.orders.status import OrderStatus

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 0.5


class ReadModelStatuses:
    """`OrderStatuses` answered from the read model's `orders` table in `schema`."""

    def __init__(self, pool: AsyncConnectionPool, schema: str,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._query = sql.SQL("select status from {} where order_id = %s").format(
            sql.Identifier(schema, "orders"))

    async def status_of(self, order_id: str) -> OrderStatus | None:
        try:
            async with self._pool.connection(timeout=self._timeout_s) as connection:
                cursor = await connection.execute(self._query, (order_id,))
                row = await cursor.fetchone()
        except psycopg.Error as exc:  # PoolTimeout included: the database is out of reach
            log.warning("read model unavailable for the status of %s: %r", order_id, exc)
            return None
        return None if row is None else OrderStatus(row[0])
