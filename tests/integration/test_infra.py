"""The infrastructure foundation: topics, migrations and the launcher's failure messages."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.errors import PrerequisiteError
from infra.kafka import KafkaBroker
from infra.postgres import EmbeddedPostgres
from infra.topics import ensure_topics, topic_specs
from oee import cli
from oee.settings import Settings
from tests.integration.kafka_admin import topic_config
from projections.migrate import applied_versions, discover, migrate


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_creating_topics_again_creates_nothing_and_changes_nothing(
    provisioned: Settings,
) -> None:
    assert provisioned.kafka_bootstrap_servers
    names = [spec.name for spec in topic_specs(provisioned)]

    assert await ensure_topics(provisioned, provisioned.kafka_bootstrap_servers) == []

    described = await describe_topics(provisioned.kafka_bootstrap_servers, names)
    assert {name: len(t["partitions"]) for name, t in described.items()} == dict.fromkeys(names, 4)


async def test_every_stage_has_its_work_topic(provisioned: Settings) -> None:
    assert provisioned.kafka_bootstrap_servers
    expected = [provisioned.topics.routing, provisioned.topics.execution]

    described = await describe_topics(provisioned.kafka_bootstrap_servers, expected)

    assert sorted(described) == sorted(expected)
    assert [t["error_code"] for t in described.values()] == [0] * len(expected)


@pytest.mark.parametrize("which", ["events", "checkpoints"])
async def test_the_event_store_topic_keeps_every_event_forever(provisioned: Settings,
                                                               which: str) -> None:
    """And the chain checkpoints that pin its roots (schemas.checkpoints)."""
    assert provisioned.kafka_bootstrap_servers
    topic = getattr(provisioned.topics, which)
    config = await topic_config(provisioned.kafka_bootstrap_servers, topic)
    assert config["retention.ms"] == "-1"
    assert config["cleanup.policy"] == "delete"


def test_migrations_apply_once_into_the_given_schema(settings: Settings) -> None:
    assert settings.database_url
    every_version = [m.version for m in discover()]

    first = migrate(settings.database_url, settings.db_schema)
    second = migrate(settings.database_url, settings.db_schema)

    assert [m.version for m in first] == every_version
    assert second == []
    assert applied_versions(settings.database_url, settings.db_schema) == every_version
    assert settings.db_schema in table_schemas(settings.database_url, "projection_offsets")
    assert "public" not in table_schemas(settings.database_url, "schema_migrations")


def test_a_taken_kafka_port_is_a_prerequisite_error_naming_the_port(
    taken_port: int, tmp_path: Path
) -> None:
    broker = KafkaBroker("0.0.0", taken_port, taken_port + 1, tmp_path / "kafka", tmp_path)
    with pytest.raises(PrerequisiteError, match=f"port {taken_port} .* in use.*KAFKA_PORT"):
        broker.start()


def test_a_taken_postgres_port_is_a_prerequisite_error_naming_the_port(
    taken_port: int, tmp_path: Path
) -> None:
    with pytest.raises(PrerequisiteError, match=f"port {taken_port} .* in use.*POSTGRES_PORT"):
        EmbeddedPostgres(tmp_path / "pg", taken_port).start()


def test_infra_up_on_a_taken_port_prints_one_line_and_exits_2(
    taken_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("POSTGRES_PORT", str(taken_port))

    assert cli.main(["infra", "up"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"oee: error: port {taken_port}")
    assert not list(tmp_path.glob("*/*.pid")), "nothing may be started after a failed check"


def test_an_unpublished_kafka_version_is_a_prerequisite_error_naming_it(tmp_path: Path) -> None:
    broker = KafkaBroker("0.0.404", 1, 2, tmp_path / "kafka", tmp_path / "cache")
    with pytest.raises(PrerequisiteError, match="Maven could not resolve Apache Kafka 0.0.404"):
        broker.ensure_libs()
    assert not broker.libs_dir.exists()


# --- helpers ------------------------------------------------------------------------------


async def describe_topics(bootstrap_servers: str, names: list[str]) -> dict[str, dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return {t["topic"]: t for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


def table_schemas(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select table_schema from information_schema.tables where table_name = %s", (table,)
        ).fetchall()
    return {row[0] for row in rows}
