"""Check a pooled connection on checkout only when it sat idle: no round trip per request.

Checking every connection as it is handed out (`AsyncConnectionPool.check_connection`) replaced
the connections a database restart broke before a request could fail on one, but it cost an
empty query, a round trip to PostgreSQL, on every checkout: 8 % of the API's CPU at 40
orders/s, where a POST checks out one connection for its idempotency lookup (py-spy,
docs/DESIGN.md). A connection returned a moment ago was working a moment ago; one that failed
is discarded by the pool when it comes back. So only a connection idle for longer than
`idle_s` is checked: after an outage long enough to matter, every connection still pooled has
been idle that long, or failed and was discarded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


class IdleCheck:
    """`check` and `reset` callbacks for an `AsyncConnectionPool`."""

    def __init__(self, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s = idle_s
        self._clock = clock
        self._returned: WeakKeyDictionary[AsyncConnection, float] = WeakKeyDictionary()

    async def reset(self, conn: AsyncConnection) -> None:
        """The pool got `conn` back in good order (it discards a broken one)."""
        self._returned[conn] = self._clock()

    async def check(self, conn: AsyncConnection) -> None:
        """Raises if `conn` sat idle longer than `idle_s` and no longer works (the pool then
        replaces it)."""
        returned = self._returned.get(conn)
        if returned is None or self._clock() - returned > self._idle_s:
            await AsyncConnectionPool.check_connection(conn)
