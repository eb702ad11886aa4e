"""The honest 503 against a real broker and real worker processes (issue 10).

`orders.commands` stamps each record with the broker's append time (LogAppendTime); an edge
command appended after its `acceptBy` is refused by the worker (dead-lettered with the reason
`accept_deadline_passed`, no event), so a POST answered 503 for it is never executed. A
command late on purpose is made by an API whose clock runs an hour behind (its acceptBy is
long past when the broker appends it) or by producing one with an acceptBy in the past.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from domain.orders.commands import ExecuteOrder, from_millis, to_millis
from domain.orders.events import OrderConfirmed
from domain.orders.status import OrderType
from domain.tokens import SOL, USDC
from infra.schema_registry import registered_codec
from infra.topics import LOG_APPEND_TIME, TopicSpec, create_topics, topic_specs
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from tests.harness import EventLog, edge, wait_until, workers
from tests.integration.kafka_admin import topic_config
from tests.orders_support import execute_order

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5", "slippageBps": 100}
DEADLINE_S = 60.0


async def test_the_commands_topic_is_stamped_by_the_broker(provisioned: Settings) -> None:
    assert provisioned.kafka_bootstrap_servers
    config = await topic_config(provisioned.kafka_bootstrap_servers, provisioned.topics.commands)
    assert config["message.timestamp.type"] == "LogAppendTime"


async def test_an_existing_commands_topic_gets_append_times_and_keeps_its_own_configs(
    settings: Settings,
) -> None:
    bootstrap_servers = settings.kafka_bootstrap_servers
    assert bootstrap_servers
    name = settings.topics.commands
    # An install from before: the topic exists without LogAppendTime, with a config of its own.
    old = TopicSpec(name, 2, 1, {"retention.ms": "123456789"})
    assert await create_topics(bootstrap_servers, [old]) == [name]
    try:
        (spec,) = [s for s in topic_specs(settings) if s.name == name]
        assert await create_topics(bootstrap_servers, [spec]) == []  # exists: not created

        config = await topic_config(bootstrap_servers, name)
        assert config["message.timestamp.type"] == "LogAppendTime"
        assert config["retention.ms"] == "123456789"
    finally:
        await _delete(bootstrap_servers, [name])


async def test_a_command_appended_after_its_accept_by_is_refused_by_the_worker(
    provisioned: Settings,
) -> None:
    codec = registered_codec(provisioned)
    now = datetime.now(UTC)
    late, on_time = (_execute(accept_by=now - timedelta(seconds=1)),
                     _execute(accept_by=now + timedelta(minutes=5)))
    async with _dead_letters(provisioned) as dead, workers(provisioned), \
            EventLog(provisioned) as log:
        producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                    acks="all")
        await producer.start()
        try:
            for command in (late, on_time):
                sent = await producer.send_and_wait(
                    provisioned.topics.commands, codec.encode_command(command),
                    key=command.order_id.encode())
                assert sent.timestamp_type == LOG_APPEND_TIME
        finally:
            await producer.stop()
        await wait_until(lambda: isinstance(log.terminal(on_time.order_id), OrderConfirmed),
                         DEADLINE_S, "the order appended in time to execute")
        refused = await _next(dead)

    assert log.types(late.order_id) == []  # no OrderAccepted, nothing at all
    headers = dict(refused.headers)
    assert headers["error-type"] == b"AcceptDeadlinePassed"
    assert headers["error"].startswith(b"accept_deadline_passed: command " +
                                       late.command_id.encode())
    assert refused.key == late.order_id.encode()


async def test_the_api_answers_201_in_time_and_503_late_and_the_503_never_executes(
    provisioned: Settings,
) -> None:
    behind = Replacements(clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    async with _dead_letters(provisioned) as dead, workers(provisioned), \
            EventLog(provisioned) as log, edge(provisioned) as client, \
            _edge(provisioned, behind) as late_client:
        started = time.monotonic()
        accepted = await client.post("/api/orders/execute", json=ORDER)
        answered_in_s = time.monotonic() - started
        late = await late_client.post("/api/orders/execute",
                                      json={**ORDER, "clientOrderId": "late-1"})
        accepted_id, late_id = accepted.json()["orderId"], late.json()["orderId"]
        await wait_until(lambda: isinstance(log.terminal(accepted_id), OrderConfirmed),
                         DEADLINE_S, "the 201 order to execute")
        refused = await _next(dead)  # the worker got to the late command: and refused it
        # The same key, on time now: the order the 503 left unused is created after all.
        retried = await client.post("/api/orders/execute",
                                    json={**ORDER, "clientOrderId": "late-1"})
        await wait_until(lambda: log.terminal(late_id) is not None, DEADLINE_S,
                         "the retried order to execute")

    assert accepted.status_code == 201 and answered_in_s < 2.0
    assert late.status_code == 503 and late.json()["error"] == "accept_deadline_passed"
    assert late.headers["retry-after"] == "1"
    assert refused.key == late_id.encode()
    assert dict(refused.headers)["error-type"] == b"AcceptDeadlinePassed"
    assert retried.status_code == 201 and retried.json()["orderId"] == late_id
    assert log.types(late_id).count("OrderAccepted") == 1  # one order for the key


async def test_a_late_cancel_answered_503_does_not_cancel(provisioned: Settings) -> None:

    limit = {**ORDER, "orderType": "limit", "limitPrice": "1000000"}  # waits: never reached
    behind = Replacements(clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    async with _dead_letters(provisioned) as dead, workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client, _edge(provisioned, behind) as late_client:
        placed = await client.post("/api/orders/execute", json=limit)
        order_id = placed.json()["orderId"]
        await wait_until(lambda: "OrderWaiting" in log.types(order_id), DEADLINE_S,
                         "the limit order to wait")
        late = await late_client.post(f"/api/orders/{order_id}/cancel", json={})
        await _next(dead)
        in_time = await client.post(f"/api/orders/{order_id}/cancel", json={})
        await wait_until(lambda: log.terminal(order_id) is not None, DEADLINE_S, "the cancel")

    assert (placed.status_code, late.status_code, in_time.status_code) == (201, 503, 202)
    # Only the in-time cancel decided anything: one OrderCancelled, after the wait.
    assert log.types(order_id) == ["OrderAccepted", "OrderWaiting", "OrderCancelled"]


# --- helpers ------------------------------------------------------------------------------


def _execute(accept_by: datetime) -> ExecuteOrder:
    order_id = str(uuid.uuid4())
    return execute_order(
        OrderType.MARKET, command_id=f"{order_id}/execute", order_id=order_id,
        issued_at=datetime.now(UTC), accept_by=from_millis(to_millis(accept_by)),
        token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL", token_out_symbol="USDC",
        token_in_decimals=9, token_out_decimals=6, amount_in=500_000_000, slippage_bps=100)


@asynccontextmanager
async def _edge(settings: Settings, replacements: Replacements
                ) -> AsyncIterator[httpx.AsyncClient]:
    app = bootstrap(settings, replacements)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield client


@asynccontextmanager
async def _dead_letters(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(settings.topics.dead_letters,
                                bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _next(consumer: AIOKafkaConsumer) -> ConsumerRecord[bytes, bytes]:
    record: ConsumerRecord[bytes, bytes] = await asyncio.wait_for(consumer.getone(), DEADLINE_S)
    return record


async def _delete(bootstrap_servers: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
