"""KAFKA_BROKERS=3: the launcher's three-node KRaft cluster keeps accepting acks=all writes
and serving reads with one node SIGKILLed. Real JVMs on ports of their own; only the nodes
this test started are signalled."""

from __future__ import annotations

import os
import random
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra import process
from infra.kafka_cluster import KafkaCluster
from infra.services import local_broker
from infra.topics import ensure_topics
from oee.settings import Settings
from tests.harness import wait_until_async
from tests.integration.kafka_admin import topic_config
from tests.conftest import SERVICE_PORTS

# Three JVMs booting and failing over: minutes on a loaded 2-core machine, not seconds.
pytestmark = pytest.mark.timeout(900)


def six_free_ports() -> int:
    """A base port p with p..p+5 free: three nodes at (p+2i, p+1+2i)."""
    for base in random.sample(SERVICE_PORTS, 200):
        if all(process.port_is_free(base + offset) for offset in range(6)):
            return base
    raise RuntimeError("no six consecutive free ports")


@pytest.fixture
def cluster_settings(tmp_path: Path) -> Iterator[Settings]:
    base = six_free_ports()
    settings = Settings(kafka_brokers=3, kafka_port=base, kafka_controller_port=base + 1,
                        data_dir=tmp_path, partitions=3, topic_prefix=f"c{uuid.uuid4().hex[:6]}.")
    cluster = local_broker(settings)
    assert isinstance(cluster, KafkaCluster)
    children = cluster.start(die_with_parent=True)
    try:
        yield settings.model_copy(update={"kafka_bootstrap_servers": cluster.bootstrap_servers})
    finally:
        # Throwaway data (tmp_path): no need to wait out the controlled shutdown, which two
        # nodes left without the killed one cannot finish (it timed out at 30 s).
        cluster.stop(children=children, timeout_s=3)


async def test_three_nodes_keep_accepting_acks_all_writes_with_one_node_killed(
    cluster_settings: Settings,
) -> None:
    settings, bootstrap = cluster_settings, cluster_settings.kafka_bootstrap_servers
    assert bootstrap and settings.replication_factor == 3  # derived from KAFKA_BROKERS
    topic = settings.topics.events
    await ensure_topics(settings, bootstrap)
    # Like its config below, a new topic's partitions are known to a node only once its
    # metadata reached it (an empty list before): ask until one answers with all three.
    described: dict[str, Any] = {}

    async def described_partitions() -> bool:
        described.update(await describe(bootstrap, topic))
        return len(described.get("partitions") or []) == 3

    await wait_until_async(described_partitions, 30, f"the partitions of {topic}")
    assert [len(p["replicas"]) for p in described["partitions"]] == [3, 3, 3]
    # A node answers for a topic's config once its metadata reached it: ask until one does.
    config: dict[str, str] = {}

    async def described_config() -> bool:
        config.update(await topic_config(bootstrap, topic))
        return "min.insync.replicas" in config

    await wait_until_async(described_config, 30, f"the config of {topic}")
    assert config["min.insync.replicas"] == "2"

    before = await produce(bootstrap, topic, "before", 30)
    leader = next(p["leader"] for p in described["partitions"] if p["partition"] == 0)
    cluster = local_broker(settings.model_copy(update={"kafka_bootstrap_servers": None}))
    assert isinstance(cluster, KafkaCluster)
    victim = cluster.nodes()[leader - 1]
    pid = victim.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a node this test's cluster started

    after = await produce(bootstrap, topic, "after", 30)

    assert sorted(await consume_all(bootstrap, topic, 60)) == sorted(before + after)
    assert cluster.running_pids().count(None) == 1


async def produce(bootstrap: str, topic: str, tag: str, count: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, request_timeout_ms=60_000)
    await producer.start()
    values = [f"{tag}-{i}" for i in range(count)]
    try:
        for value in values:
            await producer.send_and_wait(topic, value.encode(), key=value.encode())
    finally:
        await producer.stop()
    return values


async def consume_all(bootstrap: str, topic: str, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        for tp, offset in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, offset)
        values: list[str] = []
        while len(values) < expected:
            batch = await consumer.getmany(timeout_ms=30_000)
            assert batch, f"no records within 30s after {len(values)} of {expected}"
            values += [r.value.decode() for records in batch.values() for r in records]
        return values
    finally:
        await consumer.stop()


async def describe(bootstrap: str, topic: str) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [found] = await admin.describe_topics([topic])
        return dict(found)
    finally:
        await admin.close()
