"""The HTTP command edge against a real Kafka broker.

A 201 must mean "the command is in orders.commands, acknowledged by every in-sync replica";
a bad request must leave the topic untouched. The app runs with its real lifespan (its own
idempotent producer) behind httpx's ASGI transport; the topic is read back with a plain
consumer and decoded with the engine's codec.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.orders.commands import CancelOrder, Command, ExecuteOrder
from domain.orders.status import OrderType
from domain.tokens import SOL, USDC
from oee.api_bootstrap import bootstrap
from oee.settings import Settings
from infra.schema_registry import reading_codec

DEADLINE_S = 20.0
QUOTE = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}


@asynccontextmanager
async def edge(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One API instance: its lifespan opens (and finally closes) its own producer."""
    app = bootstrap(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield client


@pytest.fixture
async def client(provisioned: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with edge(provisioned) as client:
        yield client


@asynccontextmanager
async def commands_topic(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        settings.topics.commands, bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def record_count(settings: Settings) -> int:
    """How many records the commands topic holds: the sum of its partitions' end offsets."""
    async with commands_topic(settings) as consumer:
        topic = settings.topics.commands
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(partitions)).values())


async def read_commands(settings: Settings, expected: int) -> list[tuple[bytes, Command]]:
    """The first `expected` records of the commands topic as (key, command), within a deadline."""
    found: list[tuple[bytes, Command]] = []
    codec = reading_codec(settings)
    deadline = time.monotonic() + DEADLINE_S
    async with commands_topic(settings) as consumer:
        while len(found) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {expected} commands after {DEADLINE_S}s")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found += [(record.key, codec.decode_command(record.value)) for record in records]
    return found


async def test_an_accepted_order_is_already_in_the_commands_topic(
    provisioned: Settings, client: httpx.AsyncClient
) -> None:
    response = await client.post("/api/orders/execute", json={
        "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.1", "slippageBps": 40,
    })

    assert response.status_code == 201
    order_id = response.json()["orderId"]
    # The answer came after the broker's acknowledgement: the record is there right away.
    assert await record_count(provisioned) == 1
    ((key, command),) = await read_commands(provisioned, 1)
    assert key == order_id.encode()
    assert isinstance(command, ExecuteOrder)
    assert command.order_id == order_id
    assert command.order_type is OrderType.MARKET
    assert (command.terms.token_in, command.terms.token_out) == (SOL.mint, USDC.mint)
    assert (command.terms.amount_in, command.terms.slippage_bps) == (1_100_000_000, 40)


async def test_the_same_client_order_id_always_names_the_same_order(
    provisioned: Settings, client: httpx.AsyncClient
) -> None:
    body = {"tokenIn": "USDC", "tokenOut": "SOL", "amount": 250, "slippageTolerance": 0.5,
            "clientOrderId": "desk-7-42"}

    first = await client.post("/api/orders/execute", json=body)
    replay = await client.post("/api/orders/execute", json=body)
    # Another API instance (or this one after a restart) does not remember the key; the id
    # is derived from it, so the order is still the same one and the order agent dedupes.
    async with edge(provisioned) as other_instance:
        elsewhere = await other_instance.post("/api/orders/execute", json=body)

    assert (first.status_code, replay.status_code, elsewhere.status_code) == (201, 201, 201)
    ids = {r.json()["orderId"] for r in (first, replay, elsewhere)}
    assert len(ids) == 1
    commands = [command for _, command in await read_commands(provisioned, 2)]
    assert {command.order_id for command in commands} == ids
    assert len({command.command_id for command in commands}) == 1


BAD_REQUESTS = [
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"5_000"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":-1}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"0"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"0.0000000001"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":1e400}',
    b'{"tokenIn":"SOL","tokenOut":"wSOL","amountIn":"1"}',
    b'{"tokenIn":"DOGE","tokenOut":"USDC","amountIn":"1"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","slippageBps":9000}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","slippage":0.01,"slippageBps":100}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","orderType":"limit"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountln":"1"}',
    b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1"',
    b"",
]


async def test_bad_requests_are_refused_and_leave_the_topic_empty(
    provisioned: Settings, client: httpx.AsyncClient
) -> None:
    statuses = []
    for content in BAD_REQUESTS:
        response = await client.post("/api/orders/execute", content=content,
                                     headers={"content-type": "application/json"})
        statuses.append(response.status_code)
        assert response.json()["detail"], content
    cancel = await client.post("/api/orders/not-an-order/cancel")

    assert all(400 <= status < 500 for status in [*statuses, cancel.status_code]), statuses
    assert await record_count(provisioned) == 0


async def test_a_cancel_is_in_the_commands_topic_when_answered(
    provisioned: Settings, client: httpx.AsyncClient
) -> None:
    placed = await client.post("/api/orders/execute", json=QUOTE)
    order_id = placed.json()["orderId"]

    response = await client.post(f"/api/orders/{order_id}/cancel", json={"reason": "test"})

    assert response.status_code == 202
    assert response.json() == {"orderId": order_id, "status": "cancel_requested"}
    commands = await read_commands(provisioned, 2)
    # Same key, same partition: the cancel is ordered after the order it cancels.
    assert [type(command) for _, command in commands] == [ExecuteOrder, CancelOrder]
    assert {key for key, _ in commands} == {order_id.encode()}


async def test_concurrent_orders_are_all_acknowledged(
    provisioned: Settings, client: httpx.AsyncClient
) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5"}

    posts = (client.post("/api/orders/execute", json=body) for _ in range(50))
    responses = await asyncio.gather(*posts)

    assert {r.status_code for r in responses} == {201}
    assert await record_count(provisioned) == 50


async def test_the_quote_endpoint_shows_both_venues(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/quote", params=QUOTE)

    assert response.status_code == 200
    quote = response.json()
    assert {q["venue"] for q in quote["quotes"]} == {"raydium", "meteora"}
    assert quote["tokenIn"]["mint"] == SOL.mint
    assert quote["reason"]


async def test_health_answers_while_the_bus_is_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
