"""What the read model says an order's status is: the edge's `OrderStatuses` port.

Consumes the `orders` table of the read model (docs/DESIGN.md; the projector writes it) with
one read-only query per cancel request; produces the order's status, or None when the read
model does not know the order. The cancel route refuses with 409 what can no longer be
cancelled; everything else still goes to the order agent, which decides for good. So an
unreachable database degrades to "unknown" (the agent decides) instead of failing the cancel,
after a short wait: a cancel must not hang on the read model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from domain.orders.status import OrderStatus
from infra.services import database_url
from oee.settings import Settings

log = logging.getLogger(__name__)

_QUERY: Final = "select status from orders where order_id = %s"
DEFAULT_TIMEOUT_S: Final = 0.5


class ReadModelStatuses:
    """`OrderStatuses` answered from the read model's `orders` table."""

    def __init__(self, pool: AsyncConnectionPool, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def status_of(self, order_id: str) -> OrderStatus | None:
        try:
            async with self._pool.connection(timeout=self._timeout_s) as connection:
                cursor = await connection.execute(_QUERY, (order_id,))
                row = await cursor.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("read model unavailable for the status of %s: %r", order_id, exc)
            return None
        return None if row is None else OrderStatus(row[0])


@asynccontextmanager
async def read_model_statuses(settings: Settings) -> AsyncIterator[ReadModelStatuses]:
    """A small pool on the read model's schema; it connects in the background, so a database
    that is down at start-up does not stop the edge."""
    pool = AsyncConnectionPool(
        database_url(settings), min_size=1, max_size=4, open=False, timeout=DEFAULT_TIMEOUT_S,
        kwargs={"autocommit": True, "options": f"-c search_path={settings.db_schema}"},
    )
    await pool.open(wait=False)
    try:
        yield ReadModelStatuses(pool)
    finally:
        await pool.close()
