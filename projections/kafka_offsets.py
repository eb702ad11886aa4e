"""Where the topics end and how far each reader has got: Kafka's side of every lag figure.

Consumes a Kafka cluster; produces the partitions of a topic, its end offsets, and the
committed offsets of the consumer groups (the stream workers). One admin client and one
group-less consumer, opened with `async with KafkaOffsets(bootstrap)` and shared by the
projector's start-up, the rebuild's progress, replay, `/api/metrics` and `/ready`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True, slots=True)
class GroupLag:
    """One consumer group's lag on one topic: end offsets minus committed offsets."""

    group: str
    topic: str
    lag: int
    partitions: int


class KafkaOffsets:
    """Partitions, end offsets and group offsets of one cluster."""

    def __init__(self, bootstrap_servers: str, *, request_timeout_ms: int = 10_000) -> None:
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=request_timeout_ms,
        )

    async def __aenter__(self) -> KafkaOffsets:
        await self._admin.start()
        try:
            await self._consumer.start()
        except BaseException:
            await self._admin.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions, fresh from the cluster (empty if it does not exist)."""
        for described in await self._admin.describe_topics([topic]):
            if described.get("topic") == topic and described.get("error_code") == 0:
                return sorted(p["partition"] for p in described.get("partitions", []))
        return []

    async def end_offsets(
        self, topic: str, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        """The offset the next record of each partition will get."""
        wanted = list(partitions) if partitions is not None else await self.partitions(topic)
        if not wanted:
            return {}
        ends = await self._consumer.end_offsets([TopicPartition(topic, p) for p in wanted])
        return {tp.partition: offset for tp, offset in ends.items()}

    async def offsets_for_time(
        self, topic: str, partitions: Iterable[int], timestamp_ms: int
    ) -> dict[int, int | None]:
        """Per partition, the first offset whose record time is >= `timestamp_ms` (None if
        every record is older)."""
        tps = {TopicPartition(topic, p): timestamp_ms for p in partitions}
        found = await self._consumer.offsets_for_times(tps)
        return {tp.partition: (at.offset if at is not None else None) for tp, at in found.items()}

    async def group_lags(self, topics: Iterable[str] | None = None) -> list[GroupLag]:
        """Lag of every consumer group that commits offsets to Kafka, per topic."""
        wanted = set(topics) if topics is not None else None
        lags: list[GroupLag] = []
        for group, *_ in sorted(await self._admin.list_consumer_groups()):
            committed = await self._admin.list_consumer_group_offsets(group)
            by_topic: dict[str, dict[int, int]] = {}
            for tp, meta in committed.items():
                if meta.offset >= 0 and (wanted is None or tp.topic in wanted):
                    by_topic.setdefault(tp.topic, {})[tp.partition] = meta.offset
            for topic, offsets in sorted(by_topic.items()):
                ends = await self.end_offsets(topic, offsets)
                lags.append(GroupLag(group, topic, lag_of(ends, offsets), len(offsets)))
        return lags


def lag_of(ends: Mapping[int, int], positions: Mapping[int, int]) -> int:
    """Records not yet read: per partition end minus position (0 for a missing position's
    partition means everything is outstanding)."""
    return sum(max(end - positions.get(partition, 0), 0) for partition, end in ends.items())

