"""The event store as an auditor reads it: every record of `orders.events`, with plain aiokafka.

Consumes the events topic from its beginning (every partition, no consumer group, so nothing
the engine does is disturbed) and keeps, per order, what each record says: seq, event type and
where and when it was written. A record that does not decode is kept as garbage, not dropped:
the checker reports it. Decoding uses the one codec call that is part of the contract,
`Codec.decode_event`; of the event only its type name, order id, seq and event id are read.
What is an event is the record contract's writer fence (`schemas.writer_fence`): a claim
record, or an event a deposed writer appended after its successor's claim, is not part of
the history (counted in `stale`, and shown by the checker, never as an event).

Also reads how many records sit in the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from oee.settings import Settings
from infra.schema_registry import reading_codec
from schemas.writer_fence import Fence, Verdict

log = logging.getLogger(__name__)

# The four ends of an order's life (README, "Order lifecycle"), as the status each one leaves.
TERMINAL_STATUS = {
    "OrderConfirmed": "confirmed",
    "OrderFailed": "failed",
    "OrderCancelled": "cancelled",
    "OrderExpired": "expired",
}


@dataclass(frozen=True, slots=True)
class EventRecord:
    order_id: str
    seq: int
    type: str
    event_id: str
    partition: int
    offset: int
    timestamp_ms: int

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_STATUS

    def describe(self) -> str:
        return f"seq {self.seq} {self.type} (p{self.partition}@{self.offset})"


@dataclass(frozen=True, slots=True)
class Garbage:
    partition: int
    offset: int
    error: str


@dataclass
class EventLog:
    """What has been read so far, per order and per partition."""

    by_order: dict[str, list[EventRecord]] = field(default_factory=dict)
    by_partition: dict[int, list[EventRecord]] = field(default_factory=dict)
    garbage: list[Garbage] = field(default_factory=list)
    fences: dict[int, Fence] = field(default_factory=dict)
    claims: int = 0
    # Per partition, each claim's (offset, timestamp ms): where a new owner took it over.
    claims_at: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    stale: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)

    def add(self, record: EventRecord) -> None:
        # Plain dicts, filled here only: a lookup never creates an order without events.
        self.by_order.setdefault(record.order_id, []).append(record)
        self.by_partition.setdefault(record.partition, []).append(record)
        self.last_progress = time.monotonic()

    def terminal(self, order_id: str) -> EventRecord | None:
        return next((r for r in self.by_order.get(order_id, ()) if r.terminal), None)

    def open_orders(self, order_ids: set[str]) -> set[str]:
        """Of `order_ids`, those without a terminal event (yet)."""
        return {o for o in order_ids if self.terminal(o) is None}

    def history(self, order_id: str) -> str:
        events = self.by_order.get(order_id, [])
        return "; ".join(r.describe() for r in events) or "no events at all"

    def count_of(self, event_type: str) -> int:
        return sum(r.type == event_type for rs in self.by_order.values() for r in rs)

    def first_event_of_new_owner(self, partition: int, since_ms: int,
                                 until_ms: int | None = None) -> int | None:
        """The timestamp of the first event after the first claim of `partition` at or after
        `since_ms` (before `until_ms`): the new owner's first decision. None: not claimed
        since, or no event (in time)."""
        claims = [(offset, at) for offset, at in self.claims_at.get(partition, ())
                  if at >= since_ms]
        if not claims:
            return None
        first = next((r.timestamp_ms for r in self.by_partition.get(partition, ())
                      if r.offset > claims[0][0]), None)
        return first if first is not None and (until_ms is None or first < until_ms) else None

    def first_after(self, moment_ms: int, partitions: set[int],
                    types: frozenset[str] | None = None) -> int | None:
        """The earliest record timestamp after `moment_ms` on any of `partitions` (by type)."""
        stamps = [r.timestamp_ms for p in partitions for r in self.by_partition.get(p, ())
                  if r.timestamp_ms > moment_ms and (types is None or r.type in types)]
        return min(stamps, default=None)


class EventFollower:
    """Follows `orders.events` from the beginning into an `EventLog`, until closed."""

    def __init__(self, settings: Settings) -> None:
        assert settings.kafka_bootstrap_servers
        self._settings = settings
        self._codec = reading_codec(settings)
        self.log = EventLog()
        self._task: asyncio.Task[None] | None = None
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=50, request_timeout_ms=15000)

    async def __aenter__(self) -> EventFollower:
        await self._consumer.start()
        topic = self._settings.topics.events
        partitions = [TopicPartition(topic, p) for p in range(self._settings.partitions)]
        self._consumer.assign(partitions)
        # An explicit seek to the beginning offsets: seek_to_beginning() after end_offsets()
        # is unreliable in aiokafka 0.14.
        for tp, offset in (await self._consumer.beginning_offsets(partitions)).items():
            self._consumer.seek(tp, offset)
            self.log.next_offsets[tp.partition] = offset
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            except KafkaError as error:  # the broker is away (a fault we injected): keep trying
                log.warning("event follower: %r", error)
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                for record in records:
                    verdict = self.log.fences.setdefault(tp.partition, Fence()).judge(
                        record.offset, record.headers)
                    self.log.claims += verdict is Verdict.CLAIM
                    if verdict is Verdict.CLAIM:
                        self.log.claims_at.setdefault(tp.partition, []).append(
                            (record.offset, record.timestamp))
                    self.log.stale += verdict is Verdict.STALE
                    if verdict is Verdict.EVENT:
                        self._add(tp.partition, record.offset, record.timestamp, record.value)
                    self.log.next_offsets[tp.partition] = record.offset + 1

    def _add(self, partition: int, offset: int, timestamp_ms: int, value: bytes | None) -> None:
        try:
            assert value is not None, "a record without a value"
            event = self._codec.decode_event(value)
        except Exception as error:  # noqa: BLE001 - any undecodable record is reported, not fatal
            self.log.garbage.append(Garbage(partition, offset, f"{type(error).__name__}: {error}"))
            return
        self.log.add(EventRecord(order_id=event.order_id, seq=event.seq,
                                 type=type(event).__name__, event_id=event.event_id,
                                 partition=partition, offset=offset, timestamp_ms=timestamp_ms))

    async def end_offsets(self) -> dict[int, int]:
        topic = self._settings.topics.events
        partitions = [TopicPartition(topic, p) for p in range(self._settings.partitions)]
        ends = await self._consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    def caught_up_with(self, ends: dict[int, int]) -> bool:
        return all(self.log.next_offsets.get(p, 0) >= end for p, end in ends.items())


# The writer's refusal of an edge command the broker appended after its accept-by deadline:
# a decision (the API answered 503 or 504 for it), not a record nobody could process.
REFUSED_LATE = b"AcceptDeadlinePassed"


async def dead_letter_types(settings: Settings, timeout_s: float = 60.0) -> list[bytes]:
    """The `error-type` header of every record of the dead-letter topic."""
    assert settings.kafka_bootstrap_servers
    topic = settings.topics.dead_letters
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, offset in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, offset)
        types: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout_s:.0f}s")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                types += [dict(r.headers).get("error-type", b"") for r in records]
        return types
    finally:
        await consumer.stop()
