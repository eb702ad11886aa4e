"""A paced aiokafka consumer against the real broker: it switches to gathering fetches while
records flow, back to the idle long-poll when they stop, and loses nothing either way."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.fetch_pacing import FetchPacing, pace_consumer
from oee.settings import Settings

DEADLINE_S = 30.0
PACING = FetchPacing(busy_min_bytes=65536, busy_max_wait_ms=1000, idle_max_wait_ms=200)


async def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def test_a_paced_consumer_gathers_while_busy_and_reads_every_record(
    provisioned: Settings,
) -> None:
    topic, bootstrap = provisioned.topics.events, provisioned.kafka_bootstrap_servers
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    pace_consumer(consumer, PACING)
    async with consumer, AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        fetcher = consumer._fetcher
        await _until(lambda: fetcher._fetch_max_wait_ms == 200, "the idle long-poll is in use")
        assert fetcher._fetch_min_bytes == 1

        sent = [f"{i}".encode() for i in range(50)]
        for value in sent:
            await producer.send(topic, key=b"order-1", value=value)
        await producer.flush()
        received: list[bytes] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(received) < len(sent):
                batch = await consumer.getmany(timeout_ms=100)
                if batch and not received:
                    # A fetch just brought records: the next one gathers (for up to a second,
                    # so it cannot have come back empty already).
                    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (65536, 1000)
                received += [record.value for records in batch.values() for record in records]

        assert received == sent
        await _until(lambda: fetcher._fetch_min_bytes == 1, "an empty fetch restores the idle poll")
        assert fetcher._fetch_max_wait_ms == 200

        # After the pause a lone record is still read (its fetch answers at the first byte).
        await producer.send_and_wait(topic, key=b"order-1", value=b"late")
        async with asyncio.timeout(DEADLINE_S):
            late = await consumer.getone()
        assert late.value == b"late"
