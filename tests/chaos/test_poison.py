"""Poison records in the order topics (issue 10 g, h).

(g) 64 garbage bytes land in one partition of the event store, then the worker restarts and
must fold that partition again. (h) garbage bytes and a record claiming a schema version from
the future (a real command, its version byte raised to 255) land in orders.commands while the
worker runs. Either way one bad record may be set aside (dead-lettered), but no order may be
lost or stalled behind it.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oee.settings import Settings
from schemas.codec import CONFLUENT_MAGIC, MAGIC
from tests.chaos.checker import Expectations
from tests.chaos.conftest import Scoreboard
from tests.chaos.system import FAULT_WAIT_S, System, wait_until

pytestmark = pytest.mark.timeout(900)

ORDERS, RATE = 300, 50
POISONED_PARTITION = 0


def garbage() -> bytes:
    """64 bytes that are no record of ours (never starting with the codec's magic byte)."""
    data = random.Random(10).randbytes(64)
    return bytes([MAGIC ^ 0xFF]) + data[1:]


async def produce(settings: Settings, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=POISONED_PARTITION)
    finally:
        await producer.stop()


async def a_command_from_the_future(settings: Settings) -> tuple[bytes, bytes]:
    """The first command of the poisoned partition (Confluent framing, as the API writes it),
    re-labelled in the older header as schema version 255."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.commands, POISONED_PARTITION)
        consumer.assign([tp])
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        record = await asyncio.wait_for(consumer.getone(tp), timeout=60)
    finally:
        await consumer.stop()
    assert record.value is not None and record.key is not None
    assert record.value[0] == CONFLUENT_MAGIC
    return record.key, bytes([MAGIC, 255]) + record.value[5:]


async def test_g_garbage_in_the_event_store_then_a_worker_restart(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=1) as system:
        (worker,) = system.workers
        load = system.load(count=ORDERS, rate=RATE)
        firing = asyncio.create_task(load.run())
        await wait_until(lambda: load.settled >= 100, FAULT_WAIT_S, "100 orders accepted")
        injected_at = time.time()
        await produce(system.settings, system.settings.topics.events, garbage(), b"garbage")
        worker.stop()
        worker.start()
        restarted_at = time.time()
        await firing
        recovery = system.log.first_after(int(restarted_at * 1000), {POISONED_PARTITION})
        verdict = await system.verdict(
            "g: garbage in orders.events", "64 garbage bytes in orders.events p0, worker restart",
            load, None if recovery is None else recovery / 1000 - restarted_at,
            Expectations(dead_letters=1, garbage_in_log=1))
        system.phase(f"injected at {injected_at:.0f}")
    scoreboard.record(verdict)
    verdict.assert_clean()


async def test_h_garbage_and_a_future_schema_version_in_orders_commands(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE)
        firing = asyncio.create_task(load.run())
        await wait_until(lambda: load.settled >= 50, FAULT_WAIT_S, "50 orders accepted")
        key, future = await a_command_from_the_future(system.settings)
        injected_at = time.time()
        await produce(system.settings, system.settings.topics.commands, garbage(), b"garbage")
        await produce(system.settings, system.settings.topics.commands, future, key)
        await firing
        recovery = system.log.first_after(int(injected_at * 1000), {POISONED_PARTITION})
        verdict = await system.verdict(
            "h: poison in orders.commands",
            "64 garbage bytes + a v255 command in orders.commands p0",
            load, None if recovery is None else recovery / 1000 - injected_at,
            Expectations(dead_letters=2))
    scoreboard.record(verdict)
    verdict.assert_clean()
