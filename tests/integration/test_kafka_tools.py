"""`oee kafka TOOL ARGS`: Apache Kafka's own tools, from the launcher's jars, against the
configured broker by default. Real processes against the session's broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

from oee.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def oee(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment(), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "oee", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=240, check=False)


def test_kafka_topics_lists_the_engine_topics_of_the_configured_broker(
    provisioned: Settings,
) -> None:
    result = oee(provisioned, "kafka", "topics", "--list")

    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert {provisioned.topics.events, provisioned.topics.commands} <= listed


async def test_the_console_consumer_prints_what_was_produced(provisioned: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(provisioned.topics.dead_letters, b"hello from a test",
                                     key=b"k", partition=0)
    finally:
        await producer.stop()

    result = oee(provisioned, "kafka", "console-consumer", "--topic",
                 provisioned.topics.dead_letters, "--from-beginning", "--max-messages", "1",
                 "--timeout-ms", "60000")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from a test"


def test_an_unreachable_broker_is_one_clear_line_and_exit_2(
    settings: Settings, tmp_path: Path
) -> None:
    unreachable = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})

    result = oee(unreachable, "kafka", "consumer-groups", "--list")

    assert result.returncode == 2
    assert result.stderr.startswith("oee: error: Kafka is not reachable at 127.0.0.1:1")
