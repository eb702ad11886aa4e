"""The order agent's recovery read: a partition of orders.events, from its start to its end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from tests.orders_support import execute_order
from domain.orders.evolve import recorded_statuses
from domain.orders.commands import ExecuteOrder
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.events import Event
from domain.orders.state import initial_state
from domain.orders.status import OrderType
from domain.tokens import SOL, USDC
from oee.settings import Settings
from schemas.codec import Codec
from streams.event_store import EventStoreReader


def accepted(order_id: str) -> ExecuteOrder:
    return execute_order(command_id=str(uuid.uuid4()), order_id=order_id,
                        issued_at=datetime.now(UTC),
                        token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
                        token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
                        amount_in=10**9, slippage_bps=50)


async def test_reading_a_partition_returns_every_event_in_offset_order(
    provisioned: Settings,
) -> None:
    codec = Codec.load()
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    written: list[Event] = []
    try:
        for _ in range(5):
            order_id = str(uuid.uuid4())
            events = decide(initial_state(order_id), accepted(order_id), now=datetime.now(UTC),
                            policy=ExecutionPolicy())
            for event, status in zip(events, recorded_statuses(events), strict=True):
                await producer.send_and_wait(provisioned.topics.events,
                                             codec.encode_event(event, status=status),
                                             key=order_id.encode(), partition=2)
            written.extend(events)
    finally:
        await producer.stop()

    reader = EventStoreReader(str(provisioned.kafka_bootstrap_servers),
                              provisioned.topics.events)

    records = await reader.read_partition(2)
    assert [codec.decode_event(r.value) for r in records if r.value] == written
    assert [r.offset for r in records] == list(range(len(written)))
    assert [r.key for r in records] == [e.order_id.encode() for e in written]
    assert await reader.read_partition(1) == []
