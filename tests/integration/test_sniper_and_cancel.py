"""Sniper orders and cancels end to end (real Kafka, PostgreSQL, worker processes).

Snipers want a token no registry knows yet; a listing (`PoolCreated`) or a liquidity change
(`LiquidityChanged`) on `market.pools` fires them. That a sniper did NOT fire is proven by
ordering, not by waiting: a cancel sent afterwards lands behind any report the trigger stage
could have produced for it (same key, same partition), so it must end the order cancelled.
The too-late cancel is refused from the read model, which an in-process projector keeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from psycopg_pool import AsyncConnectionPool

from api.order_statuses import ReadModelStatuses
from domain.orders.events import (
    CancelRejected,
    OrderCancelled,
    OrderConfirmed,
    TransactionSubmitted,
)
from domain.orders.status import OrderStatus
from oee.settings import Settings
from projections.projector import project
from tests.harness import EventLog, assert_one_clean_history, edge, wait_until, workers
from tests.integration.conditional_support import (
    LIMIT,
    created,
    is_waiting,
    liquidity_changed,
    listed,
    market,
    new_token,
    of_type,
    place,
    triggers,
)


def sniper(token_mint: str, **terms: object) -> dict[str, object]:
    return {"orderType": "sniper", "tokenIn": "USDC", "tokenOut": token_mint,
            "tokenOutDecimals": 6, "amountIn": "10", "slippageBps": 300, **terms}


async def cancel(client: httpx.AsyncClient, order_id: str) -> httpx.Response:
    return await client.post(f"/api/orders/{order_id}/cancel", json={"reason": "test"})


async def test_a_sniper_fires_on_its_listing_within_its_max_price(provisioned: Settings) -> None:
    token = new_token("WIF")
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        buyer = await place(client, sniper(token.mint, trigger="pool_created", maxPrice="0.01"))
        too_cheap = await place(client, sniper(token.mint, trigger="pool_created",
                                               maxPrice="0.001"))
        await wait_until(lambda: is_waiting(log, buyer) and is_waiting(log, too_cheap), 60,
                         "both snipers to wait")
        listing = created(listed(token, "0.002", 10_000_000), 40_000)
        await market(provisioned, [listing])
        await wait_until(lambda: log.terminal(buyer) is not None, 60, "the sniper to execute")
        assert (await cancel(client, too_cheap)).status_code == 202
        await wait_until(lambda: log.terminal(too_cheap) is not None, 60, "the cancel")

    (fired,) = triggers(log, buyer)
    assert (fired.trigger.value, fired.venue, fired.market_event_id) == (
        "pool_created", "raydium", listing.event_id)
    assert isinstance(log.terminal(buyer), OrderConfirmed)
    assert_one_clean_history(log, buyer)
    assert triggers(log, too_cheap) == []
    assert isinstance(log.terminal(too_cheap), OrderCancelled)
    (submitted,) = of_type(log, buyer, TransactionSubmitted)
    assert submitted.occurred_at > listing.occurred_at  # listing -> submitted, see the bench


async def test_a_liquidity_sniper_fires_on_the_change_that_crosses_its_threshold(
    provisioned: Settings,
) -> None:
    token = new_token("BOME")
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        order_id = await place(client, sniper(token.mint, trigger="liquidity",
                                              minLiquidityUsd="50000"))
        await wait_until(lambda: is_waiting(log, order_id), 60, "the sniper to wait")
        pool = listed(token, "0.002", 2_500_000)
        pool, shallow = liquidity_changed(pool, 10_000, 30_000)
        pool, crossing = liquidity_changed(pool, 30_000, 60_000)
        _, deeper = liquidity_changed(pool, 60_000, 70_000)
        await market(provisioned, [created(listed(token, "0.002", 2_500_000), 10_000), shallow,
                                   crossing, deeper])
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the sniper")

    (fired,) = triggers(log, order_id)
    assert fired.market_event_id == crossing.event_id
    assert fired.liquidity_usd is not None and fired.liquidity_usd == 60_000
    assert isinstance(log.terminal(order_id), OrderConfirmed)


@asynccontextmanager
async def projector(settings: Settings) -> AsyncIterator[None]:
    """The read model, kept current in-process while the block runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(project(settings, stop=stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def read_model_statuses(settings: Settings) -> AsyncIterator[ReadModelStatuses]:
    """The edge's order-status port, on a pool of the test's own."""
    assert settings.database_url
    async with AsyncConnectionPool(settings.database_url, min_size=1, max_size=2,
                                   kwargs={"autocommit": True}) as pool:
        yield ReadModelStatuses(pool, settings.db_schema)


async def until_status(statuses: ReadModelStatuses, order_id: str, wanted: OrderStatus,
                       timeout: float) -> None:
    """Poll the read model until it shows `wanted` for the order; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while await statuses.status_of(order_id) is not wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"the read model never showed {order_id} {wanted}")
        await asyncio.sleep(0.05)


async def test_a_cancel_ends_a_waiting_order_and_is_refused_once_the_swap_is_submitted(
    provisioned: Settings,
) -> None:
    slow = provisioned.model_copy(update={"confirm_delay_min_ms": 4000,
                                          "confirm_delay_max_ms": 5000})
    async with workers(slow), EventLog(slow) as log, edge(slow) as client, projector(slow), \
            read_model_statuses(slow) as read_model:
        waiting = await place(client, {**LIMIT, "limitPrice": "250"})
        await until_status(read_model, waiting, OrderStatus.WAITING, 60)
        accepted = await cancel(client, waiting)
        swap = await place(client, {**LIMIT, "orderType": "market"})
        await until_status(read_model, swap, OrderStatus.SUBMITTED, 60)
        too_late = await cancel(client, swap)
        await until_status(read_model, waiting, OrderStatus.CANCELLED, 60)
        ended = await cancel(client, waiting)
        await wait_until(lambda: log.terminal(swap) is not None, 60, "the swap to confirm")

    assert accepted.status_code == 202
    assert isinstance(log.terminal(waiting), OrderCancelled)
    assert_one_clean_history(log, waiting)
    assert (too_late.status_code, too_late.json()["error"]) == (409, "too_late_to_cancel")
    assert "already submitted" in too_late.json()["message"]
    assert isinstance(log.terminal(swap), OrderConfirmed)
    assert of_type(log, swap, CancelRejected) == []  # refused at the edge: nothing was produced
    assert ended.status_code == 409 and "has ended" in ended.json()["message"]
