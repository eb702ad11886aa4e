"""Market orders end to end: HTTP → orders.commands → stream workers → orders.events.

Real Kafka, real PostgreSQL (the simulated chain), real worker processes; the API runs
in-process. Every wait is a condition polled against a deadline.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from domain.orders.evolve import recorded_statuses
from domain.orders.events import (
    ExecutionAttemptFailed,
    OrderConfirmed,
    OrderFailed,
    RetryScheduled,
    RouteSelected,
)
from domain.market_events import PriceTick
from domain.tokens import SOL, USDC, USDT
from oee.settings import Settings
from producers.publisher import publish
from tests.harness import EventLog, assert_one_clean_history, edge, wait_until, workers

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}


async def submit(client: httpx.AsyncClient, body: dict[str, object],
                 headers: dict[str, str] | None = None) -> str:
    response = await client.post("/api/orders/execute", json=body, headers=headers or {})
    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["orderId"])


async def test_200_concurrent_orders_each_reach_exactly_one_terminal_state(
    provisioned: Settings,
) -> None:
    async with workers(provisioned, count=2), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        bodies = [{**ORDER, "amountIn": f"0.{i + 1:03d}"} for i in range(200)]
        ids = await asyncio.gather(*(submit(client, body) for body in bodies))

        await wait_until(lambda: log.all_terminal(ids), 120, "200 orders to finish")

    assert len(set(ids)) == 200
    for order_id in ids:
        assert_one_clean_history(log, order_id)
        assert isinstance(log.terminal(order_id), OrderConfirmed)
        # The writer recorded each event's status beside it: its own fold of the history.
        assert log.statuses[order_id] == recorded_statuses(log.by_order[order_id])


async def test_a_transient_failure_is_retried_with_growing_delays_then_fails_with_a_post_mortem(
    provisioned: Settings,
) -> None:
    failing = provisioned.model_copy(update={"transient_failure_rate": 1.0,
                                             "retry_base_delay_ms": 300})
    async with workers(failing), EventLog(failing) as log, edge(failing) as client:
        order_id = await submit(client, ORDER)
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the order to fail")

    events = log.by_order[order_id]
    assert_one_clean_history(log, order_id)
    attempts = [e for e in events if isinstance(e, ExecutionAttemptFailed)]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.transient for a in attempts)
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [r.delay_ms for r in retries] == [300, 600]
    # the backoff really elapsed between one attempt's failure and the next attempt's start
    for failure, retry in zip(attempts, retries, strict=False):
        assert retry.retry_at - failure.occurred_at >= timedelta(milliseconds=retry.delay_ms) - \
            timedelta(milliseconds=50)
    failed = log.terminal(order_id)
    assert isinstance(failed, OrderFailed)
    assert failed.reason_code == "attempts_exhausted"
    assert failed.post_mortem.attempts == 3
    assert [e.attempt for e in failed.post_mortem.errors] == [1, 2, 3]
    assert failed.post_mortem.last_decision is not None


async def test_a_large_order_is_split_across_venues_when_that_pays(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, edge(provisioned) as client:
        order_id = await submit(client, {**ORDER, "amountIn": "5000", "slippageBps": 300})
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the order to finish")

    selected = next(e for e in log.by_order[order_id] if isinstance(e, RouteSelected))
    assert selected.decision.venue == "split"
    assert {leg.venue for leg in selected.decision.legs} == {"raydium", "meteora"}
    best_single = max(q.amount_out for q in selected.decision.quotes if len(q.path) == 2)
    assert selected.decision.amount_out > best_single
    assert "split" in selected.decision.reason
    assert isinstance(log.terminal(order_id), OrderConfirmed)


async def test_the_same_client_order_id_yields_one_order(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, edge(provisioned) as client:
        body = {**ORDER, "clientOrderId": "bot-7-order-1"}
        first = await submit(client, body)
        second = await submit(client, body)
        third = await submit(client, ORDER, headers={"Idempotency-Key": "bot-7-order-1"})
        await wait_until(lambda: log.terminal(first) is not None, 60, "the order to finish")

    assert first == second == third
    assert log.types(first).count("OrderAccepted") == 1
    assert_one_clean_history(log, first)


async def test_a_poison_command_is_dead_lettered_and_the_worker_keeps_going(
    provisioned: Settings,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    dead = AIOKafkaConsumer(provisioned.topics.dead_letters,
                            bootstrap_servers=provisioned.kafka_bootstrap_servers,
                            group_id=None, auto_offset_reset="earliest")
    await dead.start()
    try:
        async with workers(provisioned), EventLog(provisioned) as log, \
                edge(provisioned) as client:
            await producer.send_and_wait(provisioned.topics.commands, b"\x00garbage", key=b"x")
            record = await asyncio.wait_for(dead.getone(), timeout=60)
            order_id = await submit(client, ORDER)
            await wait_until(lambda: log.terminal(order_id) is not None, 60, "a later order")
    finally:
        await producer.stop()
        await dead.stop()

    headers = dict(record.headers)
    assert record.value == b"\x00garbage"
    assert headers["source-topic"].decode() == provisioned.topics.commands
    assert headers["error-type"] == b"UndecodableRecord"
    assert isinstance(log.terminal(order_id), OrderConfirmed)


async def test_a_worker_killed_mid_load_loses_no_order_and_submits_no_swap_twice(
    provisioned: Settings,
) -> None:
    slow = provisioned.model_copy(update={"confirm_delay_min_ms": 1000,
                                          "confirm_delay_max_ms": 2000,
                                          "stall_timeout_ms": 4000,
                                          "session_timeout_s": 6.0, "log_level": "INFO"})
    async with workers(slow, count=2) as (doomed, survivor), EventLog(slow) as log, \
            edge(slow) as client:
        # Both own their share first: on a loaded machine one may start so late that the
        # other runs every partition, and killing it would take over nothing.
        share = slow.partitions // 2
        await wait_until(lambda: doomed.settled_on(share) and survivor.settled_on(share), 90,
                         "both workers to own their share of the partitions")
        ids = await asyncio.gather(*(submit(client, {**ORDER, "amountIn": f"0.{i + 1:03d}"})
                                     for i in range(150)))
        # Swaps in flight on every partition, so on the doomed worker's too: the survivor
        # must take over a live history.
        def submitted(partition: int) -> int:
            return sum("TransactionSubmitted" in log.types(o) for o in ids
                       if log.partition_of.get(o) == partition)

        await wait_until(lambda: all(submitted(p) >= 5 for p in range(slow.partitions)),
                         60, "swaps in flight on every partition")
        doomed.kill()
        await wait_until(lambda: log.all_terminal(ids), 120, "every order to finish")
        assert survivor.alive

    for order_id in ids:
        assert_one_clean_history(log, order_id)
    assert {type(log.terminal(o)).__name__ for o in ids} == {"OrderConfirmed"}
    # the survivor really took over live partitions, folding their history from the store
    folded = re.findall(r"folded (\d+) events", survivor.log_path.read_text())
    assert any(int(n) > 0 for n in folded), folded
    with psycopg.connect(str(slow.database_url), options=f"-c search_path={slow.db_schema}") as db:
        duplicates, landed_twice = db.execute(
            """SELECT coalesce(sum(duplicate_submissions), 0),
                      count(*) FILTER (WHERE n > 1)
                 FROM sim_chain_transactions
                 JOIN (SELECT order_id, count(*) AS n FROM sim_chain_transactions
                        WHERE status = 'confirmed' GROUP BY order_id) c USING (order_id)"""
        ).fetchone() or (None, None)
    assert duplicates == 0 and landed_twice == 0


async def test_a_price_move_before_landing_breaches_slippage_and_fails_with_a_clear_reason(
    provisioned: Settings,
) -> None:
    landing_later = provisioned.model_copy(update={"confirm_delay_min_ms": 2000,
                                                   "confirm_delay_max_ms": 2000})
    async with workers(landing_later), EventLog(landing_later) as log, \
            edge(landing_later) as client:
        order_id = await submit(client, {**ORDER, "slippageBps": 100})
        await wait_until(lambda: "TransactionSubmitted" in log.types(order_id), 60,
                         "the swap to be submitted")
        # SOL falls 5% against both stablecoins while the transaction is in flight
        now = datetime.now(UTC)
        await publish(landing_later, [
            PriceTick(event_id=str(uuid.uuid4()), occurred_at=now, venue=None,
                      base_mint=SOL.mint, quote_mint=quote.mint, price=Decimal("175.75"))
            for quote in (USDC, USDT)])
        await wait_until(lambda: log.terminal(order_id) is not None, 60, "the order to end")

    assert_one_clean_history(log, order_id)
    failed = log.terminal(order_id)
    assert isinstance(failed, OrderFailed)
    assert failed.reason_code == "SlippageToleranceExceeded"
    assert "minAmountOut" in failed.message
    attempt = next(e for e in log.by_order[order_id] if isinstance(e, ExecutionAttemptFailed))
    assert attempt.stage == "confirm" and not attempt.transient
