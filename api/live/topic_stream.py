"""`WS /api/topics/{topic}/stream?from=...[&partition=P][&key=K]`: raw records of a topic.

Consumes one engine topic from a position the client picks, with a Kafka consumer of its own
(a replay from an arbitrary position cannot share the process's live fan-out), and produces
every record rendered by the `TopicCatalog`, partition by partition in offset order.

    from=latest          records produced from now on (the default)
    from=earliest        everything the topic still holds
    from=offset:N        offset N of every partition (or of `partition`), clamped to the log
    from=time:ISO        the first record at or after that instant (ISO 8601; naive = UTC)
    partition=P          one partition only
    key=K                only records with that key (an order id on the order topics)

At most `LiveConfig.max_topic_streams` run at once per process; one more is closed 1013.
The consumer only fetches as fast as the client reads, so a slow client holds no queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from api.live.connection import (
    BAD_REQUEST,
    NOT_FOUND,
    SERVER_ERROR,
    TRY_AGAIN_LATER,
    Closing,
    Connection,
    StreamClosed,
)
from api.live.topic_catalog import TopicCatalog


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a replay starts: `kind` latest | earliest | offset | time (epoch ms)."""

    kind: str
    value: int = 0

    @classmethod
    def parse(cls, text: str | None) -> StartAt:
        """Raises `StreamClosed` (4400) naming what is wrong with `from`."""
        text = (text or "latest").strip()
        if text in ("latest", "earliest"):
            return cls(text)
        kind, _, value = text.partition(":")
        if kind == "offset" and value.isascii() and value.isdigit() and len(value) < 19:
            return cls("offset", int(value))
        if kind == "time":
            return cls("time", _epoch_ms(value))
        raise StreamClosed(BAD_REQUEST, "from must be latest, earliest, offset:N (N >= 0) or "
                                        "time:ISO-8601")


@dataclass(frozen=True, slots=True)
class TopicRequest:
    """A validated subscription."""

    topic: str
    start: StartAt
    partition: int | None
    key: str | None

    @classmethod
    def parse(cls, catalog: TopicCatalog, topic: str, query: Mapping[str, str]) -> TopicRequest:
        resolved = catalog.resolve(topic)
        if resolved is None:
            raise StreamClosed(NOT_FOUND, f"unknown topic {topic[:60]!r}; known: "
                                          f"{', '.join(catalog.names)}"[:120])
        partition = query.get("partition")
        if partition is not None and not (partition.isascii() and partition.isdigit()):
            raise StreamClosed(BAD_REQUEST, "partition must be a non-negative integer")
        return cls(resolved, StartAt.parse(query.get("from")),
                   None if partition is None else int(partition), query.get("key"))


@dataclass(frozen=True, slots=True)
class TopicStream:
    """One client's replay of one topic."""

    request: TopicRequest
    catalog: TopicCatalog
    bootstrap_servers: str
    slots: asyncio.Semaphore

    async def __call__(self, connection: Connection) -> Closing:
        if self.slots.locked():
            raise StreamClosed(TRY_AGAIN_LATER, "too many topic streams on this server; "
                                                "retry later")
        async with self.slots:
            # Subscribed without a group: every partition is assigned at start.
            consumer = AIOKafkaConsumer(
                self.request.topic, bootstrap_servers=self.bootstrap_servers, group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)
            try:
                await _start(consumer)
                await self._position(consumer)
                await self._forward(consumer, connection)
            finally:
                await consumer.stop()

    async def _forward(self, consumer: AIOKafkaConsumer, connection: Connection) -> NoReturn:
        """Until the client leaves (the connection cancels this) or its send fails."""
        key = None if self.request.key is None else self.request.key.encode()
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for tp in sorted(batches, key=lambda tp: tp.partition):
                for record in batches[tp]:
                    if key is None or record.key == key:
                        await connection.send(self.catalog.render(record))

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        assigned = {tp.partition: tp for tp in consumer.assignment()}
        if not assigned:
            raise StreamClosed(NOT_FOUND, f"topic {self.request.topic} does not exist on the "
                                          "cluster yet")
        chosen = self.request.partition
        if chosen is not None and chosen not in assigned:
            raise StreamClosed(BAD_REQUEST, f"partition {chosen} does not exist; "
                                            f"{self.request.topic} has {len(assigned)}")
        if chosen is not None:
            consumer.pause(*(tp for p, tp in assigned.items() if p != chosen))
        tps = [tp for p, tp in sorted(assigned.items()) if chosen is None or p == chosen]
        for tp, offset in (await _offsets(consumer, tps, self.request.start)).items():
            consumer.seek(tp, offset)


async def _offsets(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                   start: StartAt) -> dict[TopicPartition, int]:
    """The first offset to read in each partition, inside the log's current bounds."""
    first: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
    end: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    if start.kind == "earliest":
        return first
    if start.kind == "latest":
        return end
    if start.kind == "offset":
        return {tp: min(max(start.value, first[tp]), end[tp]) for tp in tps}
    found = await consumer.offsets_for_times({tp: start.value for tp in tps})
    return {tp: end[tp] if hit is None else hit.offset for tp, hit in found.items()}


async def _start(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.start()
    except KafkaError as error:
        raise StreamClosed(SERVER_ERROR, f"Kafka is unavailable: {error}") from error


def _epoch_ms(text: str) -> int:
    # An unescaped "+00:00" in a query string arrives as " 00:00": take it as meant.
    text = text.replace(" ", "+")
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise StreamClosed(BAD_REQUEST, f"from=time: {text[:40]!r} is not an ISO 8601 "
                                        "time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return max(0, int(instant.timestamp() * 1000))
