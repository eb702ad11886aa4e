"""The client features the engine relies on, against the broker version the launcher runs.

These are the checks behind the choice of `Settings.kafka_version`: an idempotent producer
with acks=all, and a consumer group whose committed offsets a restarted member resumes from.
(Admin topic creation is covered by test_infra.py, a Faust worker by the walking skeleton.)
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oee.settings import Settings

DEADLINE_S = 30.0


async def test_an_idempotent_producer_writes_every_record_once_in_order(
    provisioned: Settings,
) -> None:
    topic = provisioned.topics.commands
    async with AIOKafkaProducer(
        bootstrap_servers=provisioned.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    ) as producer:
        sent = [
            await producer.send_and_wait(topic, key=b"order-1", value=f"{i}".encode())
            for i in range(20)
        ]

    assert len({m.partition for m in sent}) == 1, "one key, one partition"
    assert [m.offset for m in sent] == list(range(sent[0].offset, sent[0].offset + 20))


async def test_a_consumer_group_resumes_after_its_committed_offset(provisioned: Settings) -> None:
    topic, group = provisioned.topics.events, f"{provisioned.engine_id}-resume"
    bootstrap = provisioned.kafka_bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        for i in range(4):
            await producer.send_and_wait(topic, key=b"order-1", value=f"{i}".encode())

    first = await consume(provisioned, topic, group, count=2)
    second = await consume(provisioned, topic, group, count=2)

    assert first + second == [b"0", b"1", b"2", b"3"]


async def consume(settings: Settings, topic: str, group: str, *, count: int) -> list[bytes]:
    """Join `group`, read `count` records, commit exactly past them, leave the group."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    async with consumer:
        values: list[bytes] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(values) < count:
                record = await consumer.getone()
                assert record.value is not None
                values.append(record.value)
                tp = TopicPartition(record.topic, record.partition)
                await consumer.commit({tp: record.offset + 1})
    return values
