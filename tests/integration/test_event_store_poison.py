"""A record of orders.events that cannot be decoded is quarantined, not fatal to its partition.

Garbage bytes are produced into every partition of the real event store (one record keyed by
an order id, one without a key); a worker restarted over that store must fold the rest, finish
old and new orders on every partition, and dead-letter only commands of the order whose history
is unreadable, with that reason.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from domain.orders.commands import CancelOrder
from oee.settings import Settings
from schemas.codec import Codec
from tests.harness import EventLog, WorkerProcess, assert_one_clean_history, edge, wait_until
from tests.integration.test_market_orders import ORDER, submit

GARBAGE = bytes(range(64))


async def poison_every_partition(settings: Settings) -> list[str]:
    """64 garbage bytes into each partition, keyed by a made-up order; and one keyless."""
    victims = [f"victim-{p}-{uuid.uuid4().hex[:6]}" for p in range(settings.partitions)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for partition, victim in enumerate(victims):
            await producer.send_and_wait(settings.topics.events, GARBAGE, key=victim.encode(),
                                         partition=partition)
            await producer.send_and_wait(settings.topics.events, GARBAGE, partition=partition)
    finally:
        await producer.stop()
    return victims


async def command_to(settings: Settings, order_id: str, partition: int) -> None:
    """A valid command for `order_id`, on the commands partition of its events."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        cancel = CancelOrder(command_id=str(uuid.uuid4()), order_id=order_id,
                             issued_at=datetime.now(UTC), reason="test")
        await producer.send_and_wait(settings.topics.commands, Codec.load().encode_command(cancel),
                                     key=order_id.encode(), partition=partition)
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, records: list[ConsumerRecord[bytes, bytes]]) -> None:
    consumer = AIOKafkaConsumer(settings.topics.dead_letters,
                                bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async for record in consumer:
            records.append(record)
    finally:
        await consumer.stop()


async def test_garbage_in_the_event_store_quarantines_one_order_and_the_partition_flows(
    provisioned: Settings,
) -> None:
    settings = provisioned.model_copy(update={"log_level": "INFO"})
    dead: list[ConsumerRecord[bytes, bytes]] = []
    watcher = asyncio.create_task(dead_letters(settings, dead))
    try:
        async with EventLog(settings) as log, edge(settings) as client:
            first = WorkerProcess(settings, "before").start()
            try:
                old = await asyncio.gather(*(submit(client, {**ORDER, "amountIn": f"0.{i + 1}"})
                                             for i in range(8)))
                await wait_until(lambda: log.all_terminal(old), 60, "the first orders")
            finally:
                first.stop()
            victims = await poison_every_partition(settings)
            await wait_until(lambda: len(log.undecodable) == 2 * settings.partitions, 30,
                             "the garbage to be in the store")

            restarted = WorkerProcess(settings, "after").start()
            try:
                new = await asyncio.gather(*(submit(client, {**ORDER, "amountIn": f"0.0{i + 1}"})
                                             for i in range(16)))
                await wait_until(lambda: log.all_terminal(new), 90, "orders after the restart")
                for partition, victim in enumerate(victims):
                    await command_to(settings, victim, partition)
                await wait_until(lambda: len(dead) >= len(victims), 60,
                                 "the victims' commands dead-lettered")
                worker_log = restarted.log_path.read_text()
            finally:
                restarted.stop()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

    for order_id in [*old, *new]:
        assert_one_clean_history(log, order_id)
    assert {record.key.decode() for record in dead if record.key} == set(victims)
    assert len(dead) == len(victims)  # no valid command of another order was dead-lettered
    for record in dead:
        headers = dict(record.headers)
        assert headers["error-type"] == b"OrderQuarantined"
        assert settings.topics.events.encode() in headers["error"]
    for partition in range(settings.partitions):
        assert f"{settings.topics.events}[{partition}]@" in worker_log
