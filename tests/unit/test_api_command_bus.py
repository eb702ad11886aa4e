"""The command bus: keyed by order id, awaits the ack, survives a wedged idempotent producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber
from aiokafka.structs import RecordMetadata, TopicPartition

from api.command_bus import CommandBus, CommandNotDelivered, CommandTopicUnavailable, Producer
from domain.orders.commands import CancelOrder, Command
from schemas.headers import RecordHeaders
from telemetry.context import TraceContext, bound

TOPIC = "orders.commands"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


class FakeEncoder:
    def encode_command(self, command: Command) -> bytes:
        return f"{type(command).__name__}:{command.command_id}".encode()


class FakeProducer:
    """Answers each send with the next scripted outcome (an exception, "hang", or an ack)."""

    def __init__(self, outcomes: list[BaseException | str]) -> None:
        self.outcomes = outcomes
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.headers: list[list[tuple[str, bytes]]] = []
        self.started = self.stopped = False
        self.missing_topic = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        if self.missing_topic:
            await asyncio.sleep(3600)
        return {0}

    async def send(self, topic: str, value: bytes, key: bytes,
                   headers: list[tuple[str, bytes]]) -> asyncio.Future[RecordMetadata]:
        self.sent.append((topic, value, key))
        self.headers.append(headers)
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        outcome = self.outcomes.pop(0) if self.outcomes else "ack"
        if isinstance(outcome, BaseException):
            delivery.set_exception(outcome)
        elif outcome == "ack":
            delivery.set_result(_metadata(len(self.sent) - 1))
        return delivery


def _metadata(offset: int) -> RecordMetadata:
    return RecordMetadata(TOPIC, 0, TopicPartition(TOPIC, 0), offset, -1, -1, 0)


class Factory:
    """Hands out the scripted producers in order, and remembers them."""

    def __init__(self, *producers: FakeProducer) -> None:
        self.waiting = list(producers)
        self.made: list[FakeProducer] = []

    def __call__(self) -> Producer:
        producer = self.waiting.pop(0) if self.waiting else FakeProducer([])
        self.made.append(producer)
        return producer


def cancel(order_id: str = "order-1") -> CancelOrder:
    return CancelOrder(command_id=f"c-{order_id}", order_id=order_id, issued_at=NOW)


async def test_a_command_is_keyed_by_its_order_id_and_answered_with_its_coordinates() -> None:
    producer = FakeProducer(["ack"])
    async with CommandBus(Factory(producer), TOPIC, FakeEncoder()) as bus:
        metadata = await bus.send(cancel("order-42"))

    assert producer.sent == [(TOPIC, b"CancelOrder:c-order-42", b"order-42")]
    assert (metadata.topic, metadata.offset) == (TOPIC, 0)
    assert producer.started and producer.stopped
    headers = RecordHeaders.parse(producer.headers[0])
    assert (headers.type, headers.id, headers.order_id, headers.source) == (
        "CancelOrder", "c-order-42", "order-42", "/oee/api")
    assert headers.trace is not None


async def test_a_resent_command_keeps_its_headers() -> None:
    wedged, fresh = FakeProducer([OutOfOrderSequenceNumber()]), FakeProducer(["ack"])
    with bound(trace=TraceContext.new()) as context:
        async with CommandBus(Factory(wedged, fresh), TOPIC, FakeEncoder()) as bus:
            await bus.send(cancel())

    assert wedged.headers == fresh.headers
    trace = RecordHeaders.parse(fresh.headers[0]).trace
    assert context.trace is not None and trace is not None
    assert trace.trace_id == context.trace.trace_id  # the request's trace goes on


async def test_an_out_of_order_sequence_replaces_the_producer_and_sends_once_more() -> None:
    wedged, fresh = FakeProducer([OutOfOrderSequenceNumber()]), FakeProducer(["ack"])
    factory = Factory(wedged, fresh)
    async with CommandBus(factory, TOPIC, FakeEncoder()) as bus:
        await bus.send(cancel())
        await bus.send(cancel("order-2"))

    assert factory.made == [wedged, fresh]
    assert len(wedged.sent) == 1 and wedged.stopped
    assert [key for _, _, key in fresh.sent] == [b"order-1", b"order-2"]


async def test_concurrent_failures_replace_the_producer_only_once() -> None:
    wedged = FakeProducer([OutOfOrderSequenceNumber() for _ in range(5)])
    factory = Factory(wedged)
    async with CommandBus(factory, TOPIC, FakeEncoder()) as bus:
        await asyncio.gather(*(bus.send(cancel(f"order-{i}")) for i in range(5)))

    assert len(factory.made) == 2
    assert len(factory.made[1].sent) == 5


async def test_a_second_out_of_order_sequence_is_not_retried_again() -> None:
    factory = Factory(
        FakeProducer([OutOfOrderSequenceNumber()]), FakeProducer([OutOfOrderSequenceNumber()])
    )
    async with CommandBus(factory, TOPIC, FakeEncoder()) as bus:
        with pytest.raises(CommandNotDelivered):
            await bus.send(cancel())

    assert len(factory.made) == 2


async def test_a_kafka_error_is_reported_as_not_delivered() -> None:
    factory = Factory(FakeProducer([KafkaTimeoutError()]))
    async with CommandBus(factory, TOPIC, FakeEncoder()) as bus:
        with pytest.raises(CommandNotDelivered, match="refused"):
            await bus.send(cancel())


async def test_no_acknowledgement_in_time_is_reported_as_not_delivered() -> None:
    factory = Factory(FakeProducer(["hang"]))
    async with CommandBus(factory, TOPIC, FakeEncoder(), delivery_timeout_s=0.05) as bus:
        with pytest.raises(CommandNotDelivered, match="within"):
            await bus.send(cancel())


async def test_sending_on_a_bus_that_is_not_open_is_a_bug() -> None:
    bus = CommandBus(Factory(), TOPIC, FakeEncoder())

    with pytest.raises(RuntimeError, match="not open"):
        await bus.send(cancel())


async def test_the_bus_does_not_open_without_its_topic_and_closes_what_it_started() -> None:
    producer = FakeProducer([])
    producer.missing_topic = True
    bus = CommandBus(Factory(producer), TOPIC, FakeEncoder(), delivery_timeout_s=0.05)

    with pytest.raises(CommandTopicUnavailable, match="oee topics create"):
        async with bus:
            pass

    assert producer.stopped
