"""Creates every topic the engine uses, idempotently, with explicit partitions and configs.

Consumes a Settings (names, partition count, replication); produces topics on
the cluster, each needing 2 replicas in sync for an acks=all write once it has 3. Running it again, or against a cluster where some topics exist, is not an error.
Existing topics keep their partition count and configs, except the configs the engine's
correctness rests on (`ENFORCED`), which are brought to an existing topic too: so an install
made before `orders.commands` needed LogAppendTime gets it at its next `oee topics create`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from infra.kafka import min_insync_replicas
from oee.settings import Settings

# The event store keeps everything: deletion-based cleanup that never deletes (never compacted:
# compaction would keep only the last event of each order).
EVENT_STORE_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1"}
# Commands carry an accept-by deadline judged against the broker's append time of their
# record (issue 10): the broker, not a producer's clock, stamps each record, and the producer
# learns the stamp from its acknowledgement (RecordMetadata.timestamp), so the API and the
# writer judge one command by the same two numbers.
COMMANDS_CONFIG = {"message.timestamp.type": "LogAppendTime"}
LOG_APPEND_TIME: Final = 1  # the timestamp type Kafka reports for a LogAppendTime record
# Configs set on existing topics too (the rest of an existing topic's configs are its own).
ENFORCED: Final = frozenset(COMMANDS_CONFIG)
# The writer's snapshots: only the latest per partition (its key) matters. A snapshot holds the
# ids of every ended order of its partition, so its records may be far above the broker's
# default 1 MB.
SNAPSHOTS_CONFIG = {"cleanup.policy": "compact"}
_CREATE_TIMEOUT_MS = 30_000
_DYNAMIC_TOPIC_CONFIG: Final = 1  # DescribeConfigs' config_source of a topic's own setting

log = logging.getLogger(__name__)


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
    special = {topics.events: EVENT_STORE_CONFIG, topics.checkpoints: EVENT_STORE_CONFIG,
               topics.commands: COMMANDS_CONFIG,
               topics.snapshots: SNAPSHOTS_CONFIG
               | {"max.message.bytes": str(settings.snapshot_max_bytes)}}
    return [TopicSpec(name, partitions, replication, special.get(name, {}) | durability)
            for name in [topics.events, topics.checkpoints, topics.snapshots, *names]]


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
        await align_configs(admin, [spec for spec in specs if spec.name not in created])
        return created
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, bootstrap_servers: str) -> list[str]:
    """Create every topic of `settings` on the cluster at `bootstrap_servers`."""
    return await create_topics(bootstrap_servers, topic_specs(settings))


async def align_configs(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> list[str]:
    """Give existing topics the `ENFORCED` configs of their spec; return the names altered.

    aiokafka speaks only AlterConfigs, which replaces a topic's whole set of its own configs
    (no incremental variant), so the set sent is the topic's current own configs plus ours:
    nothing an operator set on the topic is lost.
    """
    wanted = {spec.name: {k: v for k, v in spec.config.items() if k in ENFORCED}
              for spec in specs}
    wanted = {name: config for name, config in wanted.items() if config}
    if not wanted:
        return []
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted])
    changes: dict[str, dict[str, str]] = {}
    for response in described:
        for resource in response.to_object()["resources"]:
            name, entries = resource["resource_name"], resource["config_entries"]
            if all(_value(entries, key) == value for key, value in wanted[name].items()):
                continue
            own = {e["config_names"]: e["config_value"] for e in entries
                   if e["config_source"] == _DYNAMIC_TOPIC_CONFIG}
            changes[name] = own | wanted[name]
    if changes:
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs=config)
             for name, config in changes.items()])
        for response in responses:
            for result in response.to_object()["resources"]:
                if result["error_code"] != 0:
                    error = for_code(result["error_code"])
                    raise error(f"cannot alter the configs of {result['resource_name']}: "
                                f"{result['error_message']}")
        log.info("topic configs aligned: %s", changes)
    return sorted(changes)


def _value(entries: list[dict[str, Any]], key: str) -> str | None:
    return next((e["config_value"] for e in entries if e["config_names"] == key), None)


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
