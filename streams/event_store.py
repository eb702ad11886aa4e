"""Reads one partition of the event store (`orders.events`) to its current end: from offset 0,
or from a snapshot's offset on (`read`, chunk by chunk, so a long partition never sits in
memory whole).

Produces the raw records (offset, key, value, headers), undecoded: the fold (`streams.order_states`)
decides what a record it cannot read means, so one bad record can never make the whole
partition unreadable. The order agent folds the partition when it is assigned it: the event
store is the aggregate's changelog, so state can never be ahead of what is durable in Kafka.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

FETCH_BYTES = 16 * 1024 * 1024
CHUNK_RECORDS = 10_000


class OutOfRange(ValueError):
    """A read asked to start outside the partition's offsets."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()  # the writer fence's (schemas.writer_fence)


class EventStoreReader:
    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic

    async def read_partition(self, partition: int) -> list[StoredRecord]:
        """Every record of `partition` durable at call time, in offset order."""
        records: list[StoredRecord] = []

        async def keep(chunk: list[StoredRecord]) -> None:
            records.extend(chunk)

        await self.read(partition, None, keep)
        return records

    async def read(self, partition: int, start: int | None,
                   sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> int:
        """Hand every record of `partition` from `start` (None: its beginning) to its end at
        call time to `sink`, in chunks in offset order; returns that end."""
        tp = TopicPartition(self.topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=FETCH_BYTES,
        )
        await consumer.start()
        try:
            end = (await consumer.end_offsets([tp]))[tp]
            beginning = (await consumer.beginning_offsets([tp]))[tp]
            if start is not None and not beginning <= start <= end:
                raise OutOfRange(f"{self.topic}[{partition}] holds offsets {beginning} to "
                                 f"{end}, not {start}")
            # Assigned and sought in one step, with nothing awaited in between: once assigned,
            # the fetcher would fetch from the reset position (the end), the broker would park
            # that fetch for fetch_max_wait_ms (no records there), and the seek would wait for
            # it: half a second of every takeover. An explicit seek, too: with aiokafka 0.14,
            # seek_to_beginning() after end_offsets() leaves the position at the end.
            consumer.assign([tp])
            consumer.seek(tp, beginning if start is None else start)
            await self._read_until(consumer, tp, end, sink)
            return int(end)
        finally:
            await consumer.stop()

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]:
        """The current end (the next offset) of each of `partitions`."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: int(end) for tp, end in ends.items()}
        finally:
            await consumer.stop()

    async def _read_until(self, consumer: AIOKafkaConsumer, tp: TopicPartition, end: int,
                          sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> None:
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=CHUNK_RECORDS)
            chunk = [StoredRecord(record.offset, record.key, record.value,
                                  tuple(record.headers or ()))
                     for record in batches.get(tp, []) if record.offset < end]
            if chunk:
                await sink(chunk)
