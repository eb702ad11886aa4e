"""The API pool's checkout check (infra.pool_checks) on a real PostgreSQL connection: no round
trip for a connection that just came back, a real check for one that sat idle."""

from __future__ import annotations

import psycopg
import pytest

from infra.pool_checks import IdleCheck


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_connection_returned_a_moment_ago_is_handed_out_without_a_round_trip(
    database_url: str,
) -> None:
    clock = Clock()
    idle = IdleCheck(1.0, clock)
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await idle.reset(conn)
    await conn.close()  # a check that sent anything would fail on it

    clock.now += 0.5
    await idle.check(conn)  # trusted: it came back in good order half a second ago

    clock.now += 1.0
    with pytest.raises(psycopg.OperationalError):
        await idle.check(conn)  # idle longer than 1 s: checked, and found broken


async def test_a_connection_the_pool_never_got_back_is_checked(database_url: str) -> None:
    idle = IdleCheck(1.0, Clock())
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await idle.check(conn)  # a working one passes its check
    finally:
        await conn.close()
    with pytest.raises(psycopg.OperationalError):
        await idle.check(conn)
