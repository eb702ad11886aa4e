"""Creates every topic the engine uses, idempotently, with explicit partitions and configs.

Consumes a Settings (names, partition count, replication); produces topics on
the cluster, each needing 2 replicas in sync for an acks=all write once it has 3. Running it again, or against a cluster where some topics exist, is not an error.
Existing topics are left as they are (their partition count and configs are not altered).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from infra.kafka import min_insync_replicas
from oee.settings import Settings

# The event store keeps everything: deletion-based cleanup that never deletes (never compacted:
# compaction would keep only the last event of each order).
EVENT_STORE_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1"}
_CREATE_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the engine needs it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)

    def to_new_topic(self) -> NewTopic:
        return NewTopic(
            self.name, self.partitions, self.replication_factor, topic_configs=dict(self.config)
        )


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the engine, from one settings object."""
    topics = settings.topics
    names = [
        topics.commands,
        topics.routing,
        topics.execution,
        topics.dead_letters,
        topics.prices,
        topics.pools,
    ]
    partitions, replication = settings.partitions, settings.replication_factor
    durability = {"min.insync.replicas": str(min_insync_replicas(replication))}
    # The chain checkpoints are kept as long as the events they pin (schemas.checkpoints).
    specs = [TopicSpec(name, partitions, replication, EVENT_STORE_CONFIG | durability)
             for name in (topics.events, topics.checkpoints)]
    return specs + [TopicSpec(name, partitions, replication, durability) for name in names]


async def create_topics(bootstrap_servers: str, specs: Sequence[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created by this call."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics(
            [spec.to_new_topic() for spec in specs], timeout_ms=_CREATE_TIMEOUT_MS
        )
        created = _created_names(response.topic_errors)
        await _wait_visible(admin, [spec.name for spec in specs])
        return created
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, bootstrap_servers: str) -> list[str]:
    """Create every topic of `settings` on the cluster at `bootstrap_servers`."""
    return await create_topics(bootstrap_servers, topic_specs(settings))


def _created_names(topic_errors: Iterable[tuple[object, ...]]) -> list[str]:
    created: list[str] = []
    for topic, code, *message in topic_errors:
        error = for_code(int(code))  # type: ignore[call-overload]
        if code == 0:
            created.append(str(topic))
        elif error is not TopicAlreadyExistsError:
            raise error(f"cannot create topic {topic}: {message[0] if message else ''}")
    return created


async def _wait_visible(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0
) -> None:
    """Wait until the broker's metadata lists every topic with a leader for each partition.

    CreateTopics returns once the controller has committed the topics; the broker's metadata
    cache follows a moment later. Callers produce right after this, so wait for it here.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        if all(_has_leaders(topic) for topic in described):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible in metadata after {timeout_s:.0f}s: {names}")
        await asyncio.sleep(0.05)


def _has_leaders(topic: dict[str, object]) -> bool:
    partitions = topic.get("partitions")
    return (
        topic.get("error_code") == 0
        and isinstance(partitions, list)
        and bool(partitions)
        and all(p.get("leader", -1) >= 0 for p in partitions)
    )
