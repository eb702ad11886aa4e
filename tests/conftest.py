"""Real services for the test suite, and a fresh, isolated Settings per test.

Session scope: one Kafka broker, one PostgreSQL and one schema registry. External ones when
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL / SCHEMA_REGISTRY_URL are set; otherwise containers when a
Docker engine answers (testcontainers; tests/service_backends.py, the choice is in the session's
header), else the local launcher starts its own, on ports of their own and
with data in a temporary directory, tied to this process so that even a killed pytest leaves
nothing running. A service that
cannot start makes the tests that need it fail with the reason; nothing is skipped.

Per test: `settings` carries a unique topic prefix, schema and engine id (so tests never see
each other's records, rows or consumer groups), 4 partitions and no venue latency, confirm
delay or random failure, and its schema is dropped afterwards; `provisioned` also creates
that test's topics (deleted afterwards) and migrates its schema.

AUTH_MODE is off for the session (set in the environment before any Settings is built, so
the processes tests spawn inherit it): the tests of other features call the API without
keys. The auth tests (tests/integration/test_auth.py) turn it on in their own settings.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from psycopg import sql

from infra import process
from infra.schema_registry import schema_registry
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.settings import Settings
from projections.migrate import migrate
from tests.service_backends import (
    Backend,
    Choice,
    choose,
    docker_engine,
    kafka_container,
    postgres_container,
)

SERVICES_CHOICE = pytest.StashKey[Choice]()

# Ports of the test services, picked at random per session from a range away from the
# defaults of `oee infra up` (19092/19093/15432), so neither a `make run` nor another pytest
# session on this machine is touched; below the kernel's ephemeral range (32768+), so no
# outgoing connection can take one between the check and the server binding it.
SERVICE_PORTS = range(20000, 30000)


def session_ports() -> tuple[int, int, int, int]:
    """Four ports nothing listens on: Kafka, its controller, PostgreSQL, the schema registry."""
    free = [port for port in random.sample(SERVICE_PORTS, 100) if process.port_is_free(port)]
    if len(free) < 4:
        raise RuntimeError(f"no free ports for the test services in {SERVICE_PORTS}")
    return free[0], free[1], free[2], free[3]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SERVICES_CHOICE] = choose(os.environ, docker_engine(os.environ))
    # Tests about something else run without keys; the auth tests turn it on for their APIs.
    os.environ["AUTH_MODE"] = "off"


def pytest_report_header(config: pytest.Config) -> str:
    """The one line per session saying where Kafka and PostgreSQL come from, and why."""
    return config.stash[SERVICES_CHOICE].describe()


@pytest.fixture(scope="session")
def service_settings() -> Iterator[Settings]:
    """Where the session's services run: the environment's, or local ones on test ports."""
    kafka_port, controller_port, postgres_port, registry_port = session_ports()
    # Not under pytest's tmp_path: that tree is private to root (0700) and pruned by other
    # pytest sessions, while PostgreSQL runs as its own unprivileged user and must reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="oee-test-services-"))
    data_dir.chmod(0o755)
    yield Settings().model_copy(
        update={
            "kafka_port": kafka_port,
            "kafka_controller_port": controller_port,
            "postgres_port": postgres_port,
            "schema_registry_port": registry_port,
            "data_dir": data_dir,
            # cache_dir stays the user's: the broker's jars are downloaded once per machine.
        }
    )
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(
    service_settings: Settings, pytestconfig: pytest.Config
) -> Iterator[str]:
    """The session's Kafka: KAFKA_BOOTSTRAP_SERVERS, a container, or a local broker."""
    if pytestconfig.stash[SERVICES_CHOICE].kafka is Backend.CONTAINERS:
        with kafka_container(service_settings.kafka_version,
                             service_settings.kafka_port) as bootstrap:
            yield bootstrap
        return
    with kafka_bootstrap(service_settings) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def database_url(service_settings: Settings, pytestconfig: pytest.Config) -> Iterator[str]:
    """The session's PostgreSQL: DATABASE_URL, a container, or an embedded server."""
    if pytestconfig.stash[SERVICES_CHOICE].postgres is Backend.CONTAINERS:
        with postgres_container() as dsn:
            yield dsn
        return
    with postgres_dsn(service_settings, durable=False) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def schema_registry_url(service_settings: Settings, database_url: str) -> Iterator[str]:
    """The session's schema registry: SCHEMA_REGISTRY_URL, or a local one storing its schemas
    in the session's PostgreSQL."""
    with schema_registry(service_settings, database_url) as url:
        yield url


@pytest.fixture
def settings(
    service_settings: Settings, kafka_bootstrap_servers: str, database_url: str,
    schema_registry_url: str,
) -> Iterator[Settings]:
    """Settings for one test: its own topics, schema and consumer groups; fast simulated venues.

    The test's schema is dropped afterwards, whoever created it.
    """
    tag = uuid.uuid4().hex[:8]
    test_settings = service_settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_bootstrap_servers,
            "database_url": database_url,
            "schema_registry_url": schema_registry_url,
            "topic_prefix": f"t{tag}.",
            "db_schema": f"t_{tag}",
            "engine_id": f"oee-test-{tag}",
            "partitions": 4,
            "venue_latency_min_ms": 0,
            "venue_latency_max_ms": 0,
            "confirm_delay_min_ms": 0,
            "confirm_delay_max_ms": 0,
            "transient_failure_rate": 0.0,
        }
    )
    yield test_settings
    drop_schema(database_url, test_settings.db_schema)


@pytest.fixture
async def provisioned(settings: Settings) -> AsyncIterator[Settings]:
    """`settings` with its topics created and its schema migrated; the topics deleted afterwards."""
    assert settings.kafka_bootstrap_servers and settings.database_url
    await ensure_topics(settings, settings.kafka_bootstrap_servers)
    migrate(settings.database_url, settings.db_schema)
    yield settings
    await delete_test_topics(settings)


async def delete_test_topics(settings: Settings) -> None:
    """Delete the topics of one test (its prefix) and of its Faust app (its engine id).

    One broker serves the whole session; without this, thousands of partitions pile up.
    """
    assert settings.kafka_bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        names = [
            name
            for name in await admin.list_topics()
            if name.startswith((settings.topic_prefix, settings.engine_id))
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
