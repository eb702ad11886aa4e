"""Limit orders end to end: HTTP -> orders.commands -> stream workers <- market.prices.

A scripted price path is published tick by tick (`producers.publisher.publish`). Whether a
tick that must NOT fire an order has been evaluated is witnessed, not waited for: the order's
throttled bestPrice update (`PriceObserved`) shows the worker priced that very tick. Real
Kafka, PostgreSQL and worker processes; every wait is a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.orders.events import OrderConfirmed, OrderExpired, OrderTriggered
from oee.settings import Settings
from tests.harness import (
    EventLog,
    WorkerProcess,
    assert_one_clean_history,
    edge,
    wait_until,
    workers,
)
from tests.integration.conditional_support import (
    LIMIT,
    is_waiting,
    observed_near,
    place,
    tick,
    triggers,
)


def priced(log: EventLog, order_id: str, price: str) -> Callable[[], bool]:
    """Witness that the worker priced the order at the tick to `price` (its bestPrice)."""
    return lambda: observed_near(log, order_id, price)


async def test_a_limit_order_triggers_exactly_once_at_the_crossing_and_never_without_one(
    provisioned: Settings,
) -> None:
    settings = provisioned.model_copy(update={"best_price_interval_s": 0.2})
    async with workers(settings), EventLog(settings) as log, edge(settings) as client:
        crossing = await place(client, {**LIMIT, "limitPrice": "190"})
        never = await place(client, {**LIMIT, "limitPrice": "250"})
        await wait_until(lambda: is_waiting(log, crossing) and is_waiting(log, never), 60,
                         "both orders to wait")

        for price in ("186", "188", "189.5"):  # below the limit: priced, not fired
            await tick(settings, price)
            await wait_until(priced(log, crossing, price), 30, f"the order priced at {price}")
            assert triggers(log, crossing) == []
        crossed = await tick(settings, "192")
        await wait_until(lambda: log.terminal(crossing) is not None, 60, "the crossing order")
        for price in ("195", "187", "193"):  # up, down and up again: no second trigger
            await tick(settings, price)
            await wait_until(priced(log, never, price), 30, f"the other order priced at {price}")

    (fired,) = triggers(log, crossing)
    assert fired.market_event_id == crossed.event_id
    assert Decimal(190) <= fired.observed_price <= Decimal(192)
    assert isinstance(log.terminal(crossing), OrderConfirmed)
    assert_one_clean_history(log, crossing)
    assert triggers(log, never) == [] and is_waiting(log, never)


async def test_a_marketable_limit_order_fires_as_soon_as_it_waits(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, edge(provisioned) as client:
        order_id = await place(client, {**LIMIT, "limitPrice": "150"})
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the order to finish")

    assert log.types(order_id)[:4] == ["OrderAccepted", "OrderWaiting", "OrderTriggered",
                                       "RoutingStarted"]
    assert isinstance(log.terminal(order_id), OrderConfirmed)


async def test_a_gtd_limit_order_that_is_never_reached_expires_at_its_time(
    provisioned: Settings,
) -> None:
    # No bestPrice updates: on a slow machine one can fall inside the window.
    settings = provisioned.model_copy(update={"best_price_interval_s": 0.0})
    async with workers(settings), EventLog(settings) as log, edge(settings) as client:
        # The worker must be deciding before the clock starts: on a loaded machine its start
        # alone can outlast a short GTD window, and the order would (rightly) be accepted and
        # expired at once, never waiting.
        probe = await place(client, {**LIMIT, "orderType": "market", "amountIn": "0.01"})
        await wait_until(lambda: log.terminal(probe) is not None, 90, "the worker to decide")
        expires_at = datetime.now(UTC) + timedelta(seconds=3)
        order_id = await place(client, {**LIMIT, "limitPrice": "250",
                                         "expiresAt": expires_at.isoformat()})
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the order to expire")

    expired = log.terminal(order_id)
    assert isinstance(expired, OrderExpired)
    assert expired.expires_at == expires_at
    assert expired.occurred_at >= expires_at
    assert log.types(order_id) == ["OrderAccepted", "OrderWaiting", "OrderExpired"]


async def test_a_thousand_waiting_orders_survive_a_killed_worker_and_all_fire_on_the_crossing(
    provisioned: Settings,
) -> None:
    settings = provisioned.model_copy(update={"session_timeout_s": 6.0, "log_level": "INFO",
                                              "best_price_interval_s": 0.0})
    limits = [f"{190 + (i % 100) / 10:.1f}" for i in range(1_000)]  # 190.0 .. 199.9
    async with EventLog(settings) as log, edge(settings) as client:
        first = WorkerProcess(settings, "first").start()
        try:
            ids: list[str] = []
            for start in range(0, len(limits), 100):  # 100 POSTs in flight at a time
                ids += await asyncio.gather(*(
                    place(client, {**LIMIT, "amountIn": "0.01", "limitPrice": limit})
                    for limit in limits[start:start + 100]))
            await wait_until(lambda: all(is_waiting(log, o) for o in ids), 120,
                             "1,000 orders to wait")
        finally:
            first.kill()
        async with workers(settings) as (second,):
            # A market order through the new worker: it has taken over every partition.
            probe = await place(client, {**LIMIT, "orderType": "market", "amountIn": "0.01"})
            await wait_until(lambda: log.terminal(probe) is not None, 90, "the new worker")
            assert all(is_waiting(log, o) for o in ids), "an order moved while nobody watched"

            await tick(settings, "205")
            await wait_until(lambda: log.all_terminal(ids), 180, "1,000 orders to execute")

        folded = re.findall(r"folded (\d+) events", second.log_path.read_text())
        assert sum(int(n) for n in folded) >= 2 * len(ids), folded  # accepted + waiting each

    for order_id in ids:
        assert_one_clean_history(log, order_id)
        assert len(triggers(log, order_id)) == 1
        assert isinstance(log.terminal(order_id), OrderConfirmed)
    fired = {trigger.market_event_id for o in ids for trigger in triggers(log, o)}
    assert len(fired) == 1 and all(isinstance(t, OrderTriggered) for o in ids
                                   for t in triggers(log, o))
