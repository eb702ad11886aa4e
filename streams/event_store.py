"""Reads one partition of the event store (`orders.events`) from offset 0 to its current end.

The order agent folds what this returns into its in-memory state when it is assigned a
partition: the event store is the aggregate's changelog, so state can never be ahead of (or
behind) what is durable in Kafka.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.orders.events import Event
from schemas.codec import Codec

FETCH_BYTES = 16 * 1024 * 1024


class EventStoreReader:
    def __init__(self, bootstrap_servers: str, topic: str, codec: Codec) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._codec = codec

    async def read_partition(self, partition: int) -> list[Event]:
        """Every event of `partition` durable at call time, in offset order."""
        tp = TopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=FETCH_BYTES,
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            # An explicit seek: with aiokafka 0.14, seek_to_beginning() after end_offsets()
            # leaves the position at the end, and the fold would silently see nothing.
            consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
            return await self._read_until(consumer, tp, end)
        finally:
            await consumer.stop()

    async def _read_until(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                          end: int) -> list[Event]:
        events: list[Event] = []
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for record in batches.get(tp, []):
                if record.offset >= end:
                    break
                if record.value is not None:
                    events.append(self._codec.decode_event(record.value))
        return events
