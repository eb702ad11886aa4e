"""Walking skeleton: every piece of infrastructure the engine stands on, end to end.

An idempotent aiokafka producer (acks=all) writes a record; a Faust worker process copies it
to a second topic; a plain aiokafka consumer writes it to PostgreSQL; psycopg reads it back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg import sql

from infra import process
from infra.topics import TopicSpec, create_topics
from oee.settings import Settings
from tests.integration.skeleton_app import PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


@pytest.fixture
async def skeleton_topics(provisioned: Settings) -> tuple[str, str]:
    prefix, bootstrap = provisioned.topic_prefix, provisioned.kafka_bootstrap_servers
    source, sink = f"{prefix}skeleton.in", f"{prefix}skeleton.out"
    assert bootstrap
    specs = [TopicSpec(name, provisioned.partitions, provisioned.replication_factor)
             for name in (source, sink)]
    await create_topics(bootstrap, specs)
    return source, sink


@pytest.fixture
def faust_worker(
    provisioned: Settings, skeleton_topics: tuple[str, str], tmp_path: Path
) -> Iterator[Path]:
    """The copy agent in its own process, like a real stream worker; yields its log file."""
    log = tmp_path / "faust-worker.log"
    assert provisioned.kafka_bootstrap_servers
    child = process.spawn(
        [sys.executable, "-m", "tests.integration.skeleton_app", provisioned.engine_id,
         provisioned.kafka_bootstrap_servers, *skeleton_topics],
        log_path=log,
        cwd=tmp_path,  # Faust writes `<app id>-data` into its working directory
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        die_with_parent=True,
    )
    try:
        yield log
    finally:
        process.terminate(child.pid, timeout_s=20.0, child=child)
    assert not (REPO_ROOT / f"{provisioned.engine_id}-data").exists(), "left in the checkout"


async def test_a_record_flows_from_producer_through_faust_and_a_consumer_into_postgres(
    provisioned: Settings, skeleton_topics: tuple[str, str], faust_worker: Path
) -> None:
    source, sink = skeleton_topics
    key, value = b"order-1", f"hello-{uuid.uuid4().hex}".encode()
    assert provisioned.kafka_bootstrap_servers and provisioned.database_url
    create_skeleton_table(provisioned.database_url, provisioned.db_schema)

    async with idempotent_producer(provisioned.kafka_bootstrap_servers) as producer:
        metadata = await producer.send_and_wait(source, key=key, value=value)
    assert metadata.offset >= 0

    async with group_consumer(provisioned, sink) as consumer:
        record = await wait_for(consumer.getone, what="the copied record", log=faust_worker)
        store(provisioned.database_url, provisioned.db_schema, record)
        await consumer.commit()

    table = sql.Identifier(provisioned.db_schema, "skeleton_records")
    with psycopg.connect(provisioned.database_url) as conn:
        rows = conn.execute(sql.SQL("select key, value from {}").format(table)).fetchall()
    assert rows == [(key.decode(), (PREFIX + value).decode())]


# --- helpers ------------------------------------------------------------------------------


def idempotent_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True
    )


def group_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.engine_id}-skeleton-sink",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


async def wait_for(
    receive: Callable[[], Awaitable[ConsumerRecord[bytes, bytes]]], *, what: str, log: Path
) -> ConsumerRecord[bytes, bytes]:
    """Await `receive()` until a deadline; on time-out, fail with the Faust worker's log."""
    started = time.monotonic()
    try:
        return await asyncio.wait_for(receive(), timeout=DEADLINE_S)
    except TimeoutError:
        pytest.fail(
            f"{what} did not arrive within {time.monotonic() - started:.0f}s; "
            f"Faust worker log:\n{log.read_text()[-4000:]}"
        )


def create_skeleton_table(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            sql.SQL(
                "create table {}.skeleton_records (key text, value text, topic text,"
                " partition int, kafka_offset bigint, primary key (topic, partition, kafka_offset))"
            ).format(sql.Identifier(schema))
        )


def store(dsn: str, schema: str, record: ConsumerRecord[bytes, bytes]) -> None:
    assert record.key is not None and record.value is not None
    with psycopg.connect(dsn) as conn:
        conn.execute(
            sql.SQL("insert into {}.skeleton_records values (%s, %s, %s, %s, %s)").format(
                sql.Identifier(schema)
            ),
            (record.key.decode(), record.value.decode(),
             record.topic, record.partition, record.offset),
        )
