"""The simulated chain against the real PostgreSQL: a signature is submitted at most once.

Find-then-submit was two steps, so a re-drive racing a submission still waiting on the
database pool submitted again. Submission is one atomic step now, and the execution stage
keeps a re-drive of a swap it is still executing from starting a second task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from domain.market import Market
from domain.orders.commands import SwapConfirmed
from domain.orders.signatures import transaction_signature
from domain.routing import best_route
from domain.tokens import SOL, USDC
from domain.work import ExecuteSwap
from oee.settings import Settings
from projections.migrate import migrate
from streams.chain import ChainPolicy, SimulatedChain
from streams.execution_stage import ExecutionStage
from streams.in_flight import InFlight
from marketdata.view import MarketView
from tests.unit.stream_fakes import FakeClock, FakeOutbox

NO_FAILURES = ChainPolicy(seed=7, failure_rate=0.0, confirm_delay_min_ms=0,
                          confirm_delay_max_ms=0)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    assert settings.database_url
    migrate(settings.database_url, settings.db_schema)
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=4, open=False,
                               kwargs={"options": f"-c search_path={settings.db_schema}",
                                       "autocommit": True})
    await pool.open(wait=True, timeout=30)
    yield pool
    await pool.close()


def rows(settings: Settings, signature: str) -> list[tuple[str, int]]:
    with psycopg.connect(str(settings.database_url),
                         options=f"-c search_path={settings.db_schema}") as db:
        return db.execute("SELECT status, duplicate_submissions FROM sim_chain_transactions "
                          "WHERE signature = %s", (signature,)).fetchall()


def swap(order_id: str) -> ExecuteSwap:
    decision = best_route(Market.default(), SOL.mint, USDC.mint, 1_000_000_000)
    return ExecuteSwap(order_id=order_id, attempt=1,
                       signature=transaction_signature(order_id, 1), legs=decision.legs,
                       min_amount_out=decision.amount_out * 99 // 100)


async def test_concurrent_submissions_of_one_signature_land_exactly_once(
    settings: Settings, pool: AsyncConnectionPool,
) -> None:
    chain = SimulatedChain(pool, NO_FAILURES)
    signature = transaction_signature("o-race", 1)

    answers = await asyncio.gather(*(
        chain.submit("o-race", 1, signature, 1_000, datetime.now(UTC)) for _ in range(12)))

    assert sum(answer.fresh for answer in answers) == 1
    assert {answer.tx.signature for answer in answers} == {signature}
    assert {answer.tx.lands_at for answer in answers} == {answers[0].tx.lands_at}
    assert rows(settings, signature) == [("pending", 0)]


async def test_a_swap_that_lands_at_once_is_settled_by_its_submission(
    settings: Settings, pool: AsyncConnectionPool,
) -> None:
    chain, market = SimulatedChain(pool, NO_FAILURES), Market.default()
    work, too_greedy = swap("o-at-once"), swap("o-too-greedy")
    now = datetime.now(UTC)

    landed = await chain.submit(work.order_id, 1, work.signature, work.min_amount_out, now,
                                work.legs, market)
    refused = await chain.submit(too_greedy.order_id, 1, too_greedy.signature,
                                 too_greedy.min_amount_out * 2, now, too_greedy.legs, market)

    assert landed.fresh and landed.tx.status == "confirmed" and landed.tx.slot is not None
    assert landed.tx.amount_out is not None and landed.tx.amount_out >= work.min_amount_out
    assert landed.moved and all(p != market.pool(p.venue, SOL.mint, USDC.mint)
                                for p in landed.moved)
    assert rows(settings, work.signature) == [("confirmed", 0)]
    assert refused.tx.status == "failed" and not refused.moved
    assert refused.tx.error_code == "SlippageToleranceExceeded"
    again = await chain.submit(work.order_id, 1, work.signature, work.min_amount_out, now,
                               work.legs, market)  # a re-drive: the one landing, no impact
    assert not again.fresh and again.tx == landed.tx and again.moved == ()


async def test_a_re_drive_of_a_swap_still_in_flight_starts_no_second_submission(
    settings: Settings, pool: AsyncConnectionPool,
) -> None:
    outbox = FakeOutbox()
    stage = ExecutionStage(SimulatedChain(pool, NO_FAILURES), MarketView(Market.default()),
                           outbox, InFlight(100), FakeClock(), outbox)
    work = swap("o-redriven")

    for _ in range(5):  # the original and four re-drives while it waits on the pool
        await stage.accept(work)
    await stage.in_flight.drain()

    reports = outbox.of("command")
    assert [type(r) for r in reports] == [SwapConfirmed]  # it landed as it was submitted
    assert rows(settings, work.signature) == [("confirmed", 0)]
    impact = outbox.of("market")  # the one landing moved the pools it sold SOL into
    assert impact and all(event.event_id.startswith(f"swap-{work.signature}-")
                          for event in impact)
    for event in impact:  # a DLMM swap inside its active bin changes the bin, not its price
        before = Market.default().pool(event.venue, SOL.mint, USDC.mint)
        assert before is not None and event.pool() != before
        assert event.pool().spot_price(SOL.mint) <= before.spot_price(SOL.mint)

    await stage.accept(work)  # a re-drive after it finished asks the chain again
    await stage.in_flight.drain()
    assert [type(r) for r in outbox.of("command")[1:]] == [SwapConfirmed]
    assert rows(settings, work.signature) == [("confirmed", 0)]
    assert outbox.of("market") == impact  # landed once, so its impact is published once
