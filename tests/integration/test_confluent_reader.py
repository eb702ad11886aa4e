"""A third-party client reads our topics: confluent-kafka's AvroDeserializer, given nothing
but the registry URL, decodes what the engine's writers produce; and what its AvroSerializer
produces, our codec reads."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from domain.market_events import PriceTick
from domain.orders import CancelOrder
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.evolve import recorded_statuses
from domain.orders.state import initial_state
from schemas.writer_fence import claim_headers
from infra.schema_registry import registered_claim_writer, reading_codec, registered_codec
from oee.settings import Settings
from producers.publisher import publish
from schemas.codec import CONFLUENT_MAGIC
from schemas.versions import load_history
from tests.integration.test_event_store import accepted

DEADLINE_S = 30.0


def consume(settings: Settings, topic: str, count: int) -> list[Any]:
    """The first `count` records of `topic`, through confluent-kafka's own consumer."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": f"third-party-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} records in {topic}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
    finally:
        consumer.close()
    return found


def deserializer(settings: Settings) -> AvroDeserializer:
    return AvroDeserializer(SchemaRegistryClient({"url": settings.schema_registry_url}))


async def test_avro_deserializer_decodes_the_order_events_our_writer_produces(
    provisioned: Settings,
) -> None:
    codec = registered_codec(provisioned)  # as the order writer (streams.app) builds it
    order_id = str(uuid.uuid4())
    events = decide(initial_state(order_id), accepted(order_id), now=datetime.now(UTC),
                    policy=ExecutionPolicy())
    statuses = recorded_statuses(events)
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    try:
        for event, status in zip(events, statuses, strict=True):
            await producer.send_and_wait(provisioned.topics.events,
                                         codec.encode_event(event, status=status),
                                         key=order_id.encode())
    finally:
        await producer.stop()

    messages = consume(provisioned, provisioned.topics.events, len(events))
    decode = deserializer(provisioned)
    context = SerializationContext(provisioned.topics.events, MessageField.VALUE)
    records = [decode(message.value(), context) for message in messages]

    assert [r["eventId"] for r in records] == [e.event_id for e in events]
    assert [r["orderId"] for r in records] == [order_id] * len(events)
    assert [r["seq"] for r in records] == [e.seq for e in events]
    assert [r["type"] for r in records] == [type(e).__name__ for e in events]
    assert [r["status"] for r in records] == [s.value for s in statuses]
    assert [r["occurredAt"] for r in records] == [e.occurred_at for e in events]
    assert all(message.value()[0] == CONFLUENT_MAGIC for message in messages)


async def test_avro_deserializer_decodes_the_claim_records_of_the_writer_fence(
    provisioned: Settings,
) -> None:
    claim_value = registered_claim_writer(provisioned)  # as the worker (streams.app) builds it
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    try:  # what KafkaOutbox.claim appends when a worker takes partition 3
        await producer.send_and_wait(provisioned.topics.events, claim_value("host-a:42", 3),
                                     partition=3, headers=claim_headers("host-a:42"))
    finally:
        await producer.stop()

    (message,) = consume(provisioned, provisioned.topics.events, 1)
    record = deserializer(provisioned)(
        message.value(), SerializationContext(provisioned.topics.events, MessageField.VALUE))

    assert record == {"claimant": "host-a:42", "partition": 3}
    assert message.value()[0] == CONFLUENT_MAGIC


async def test_avro_deserializer_decodes_what_the_market_publisher_sends(
    provisioned: Settings,
) -> None:
    tick = PriceTick(event_id="tick-1", occurred_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
                     venue="raydium", base_mint="So11111111111111111111111111111111111111112",
                     quote_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
                     price=Decimal("184.93"))
    await publish(provisioned, [tick])  # the feed's publisher, with its own registered codec

    (message,) = consume(provisioned, provisioned.topics.prices, 1)
    record = deserializer(provisioned)(
        message.value(), SerializationContext(provisioned.topics.prices, MessageField.VALUE))

    assert (record["eventId"], record["occurredAt"]) == ("tick-1", tick.occurred_at)
    assert record["payload"]["venue"] == "raydium"
    assert record["payload"]["baseMint"] == tick.base_mint


def test_our_codec_reads_what_avro_serializer_writes(provisioned: Settings) -> None:
    registered_codec(provisioned)  # the engine registered its schemas before anyone writes
    history = load_history("order_command")
    serialize = AvroSerializer(SchemaRegistryClient({"url": provisioned.schema_registry_url}),
                               json.dumps(history.current))
    issued = datetime(2025, 3, 1, 12, tzinfo=UTC)
    record = {"commandId": "c-9", "orderId": "o-9", "issuedAt": issued, "correlationId": "c",
              "causationId": "k", "schemaVersion": history.current_version,
              "payload": ("oee.orders.CancelOrder", {"reason": "third party"})}
    topic = provisioned.topics.commands
    data = serialize(record, SerializationContext(topic, MessageField.VALUE))
    assert data is not None
    producer = Producer({"bootstrap.servers": provisioned.kafka_bootstrap_servers})
    producer.produce(topic, data, key=b"o-9")
    assert producer.flush(DEADLINE_S) == 0

    (message,) = consume(provisioned, topic, 1)
    command = reading_codec(provisioned).decode_command(message.value())
    assert command == CancelOrder(command_id="c-9", order_id="o-9", issued_at=issued,
                                  correlation_id="c", causation_id="k", reason="third party")
