"""A deposed writer cannot rewrite an order's history (issue 10 f), against the real broker.

Two writers of the same partition, as in a worker frozen past its session: A takes the
partition and accepts an order; B (the new owner) claims the partition and folds it; A wakes up
and, on its stale fold, appends the order's seq 3; B appends its own seq 3. Every reader of the
event store (the fold, the projector resuming between B's claim and A's late append) sees B's
history only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from domain.orders.commands import CancelOrder, RouteNotFound
from domain.orders.decide import ExecutionPolicy
from domain.orders.status import OrderStatus
from oee.settings import Settings
from projections.projector import ProjectorOptions, project
from infra.schema_registry import registered_claim_writer
from schemas.codec import Codec
from streams.event_store import EventStoreReader
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import OrderStates, fold_partition
from streams.outbox import KafkaOutbox
from tests.integration.projection_support import scalar
from tests.integration.test_event_store import accepted

PARTITION = 1


class AiokafkaSend:
    """Faust's producer `send` signature over a plain aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> Awaitable[Any]:
        future: Awaitable[Any] = await self._producer.send(
            topic, value, key=key, partition=partition, headers=headers)
        return future


def now() -> datetime:
    return datetime.now(UTC)


def writer(settings: Settings, producer: AIOKafkaProducer, name: str) -> OrderWriter:
    codec = Codec.load()
    outbox = KafkaOutbox(AiokafkaSend(producer), settings.topics, codec)
    reader = EventStoreReader(str(settings.kafka_bootstrap_servers), settings.topics.events)
    claim_value = registered_claim_writer(settings)
    states = OrderStates(reader, codec.decode_event, on_loaded=lambda p, s: None,
                         claim=lambda p: outbox.claim(p, name, claim_value(name, p)))
    return OrderWriter(states, outbox, WriterConfig(ExecutionPolicy(), timedelta(minutes=5)),
                       now)


def cancel(order_id: str) -> CancelOrder:
    return CancelOrder(command_id=str(uuid.uuid4()), order_id=order_id, issued_at=now())


def no_route(order_id: str) -> RouteNotFound:
    return RouteNotFound(command_id=str(uuid.uuid4()), order_id=order_id, issued_at=now(),
                         attempt=1, error_code="NO_ROUTE", message="no pool", transient=False)


async def settled(decided_settled: Awaitable[Any] | None) -> None:
    assert decided_settled is not None
    await asyncio.wait_for(decided_settled, timeout=30)


async def test_a_deposed_writer_s_late_events_are_not_part_of_the_history(
    provisioned: Settings,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                acks="all")
    await producer.start()
    try:
        order_id = str(uuid.uuid4())
        deposed, owner = (writer(provisioned, producer, "worker-a"),
                          writer(provisioned, producer, "worker-b"))
        await settled((await deposed.handle(PARTITION, accepted(order_id))).settled)

        before_a_zombie = await owner.handle(PARTITION, cancel("other-order"))
        # The projector stops right after B's claim: it must resume knowing B's epoch.
        await project(provisioned, ProjectorOptions(until_end=True))
        zombie = await deposed.handle(PARTITION, cancel(order_id))  # on its stale fold
        await settled(zombie.settled)
        own = await owner.handle(PARTITION, no_route(order_id))
        await settled(own.settled)
    finally:
        await producer.stop()

    assert not before_a_zombie.events  # an unknown order: nothing decided, but B has claimed
    assert [e.seq for e in zombie.events] == [3] and own.events[0].seq == 3
    records = await EventStoreReader(str(provisioned.kafka_bootstrap_servers),
                                     provisioned.topics.events).read_partition(PARTITION)
    folded = fold_partition("orders.events[1]", records, Codec.load().decode_event)
    assert folded.states.stale == 1 and folded.problems == ()
    order = folded.states.orders[order_id]
    assert (order.seq, order.status) == (own.events[-1].seq, OrderStatus.FAILED)

    await project(provisioned, ProjectorOptions(until_end=True))
    assert scalar(provisioned, "select status || ' ' || seq from {schema}.orders "
                               "where order_id = %s", (order_id,)) == f"failed {order.seq}"
    assert scalar(provisioned, "select type from {schema}.order_events where order_id = %s "
                               "and seq = 3", (order_id,)) != "OrderCancelled"
