"""docker-compose.yml, read as data (no Docker engine needed): what a service writes must live on
a volume, and the engine's services must be configured by the variables oee/settings.py
reads, pointing at the addresses the kafka and postgres services really serve."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from oee.settings import Settings

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
ENGINE_SERVICES = ("setup", "worker", "projector", "feed", "api")
# Where the images write when not told otherwise (apache/kafka: /opt/kafka/config/server.properties
# log.dirs; postgres: PGDATA).
KAFKA_DEFAULT_LOG_DIRS = "/tmp/kraft-combined-logs"
POSTGRES_DEFAULT_PGDATA = "/var/lib/postgresql/data"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return dict(compose["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        env = dict(item.split("=", 1) for item in env)
    return {str(name): str(value) for name, value in env.items()}


def mount_targets(service: dict[str, Any]) -> list[PurePosixPath]:
    targets = []
    for volume in service.get("volumes", []):
        target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        targets.append(PurePosixPath(target))
    return targets


def on_a_volume(path: str, service: dict[str, Any]) -> bool:
    return any(PurePosixPath(path).is_relative_to(target) for target in mount_targets(service))


def test_the_event_store_is_written_to_the_kafka_volume(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    log_dirs = environment(kafka).get("KAFKA_LOG_DIRS", KAFKA_DEFAULT_LOG_DIRS)
    for log_dir in log_dirs.split(","):
        assert on_a_volume(log_dir, kafka), f"{log_dir} is not on a volume: down/up loses it"


def test_the_read_model_is_written_to_the_postgres_volume(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    pgdata = environment(postgres).get("PGDATA", POSTGRES_DEFAULT_PGDATA)
    assert on_a_volume(pgdata, postgres)


@pytest.mark.parametrize("name", ENGINE_SERVICES)
def test_engine_services_are_configured_only_by_variables_settings_reads(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    known = {field.upper() for field in Settings.model_fields}
    unknown = set(environment(services[name])) - known - {"PYTHONUNBUFFERED"}
    assert not unknown, f"{name} sets variables oee/settings.py does not read: {unknown}"


@pytest.mark.parametrize("name", ENGINE_SERVICES)
def test_engine_services_connect_where_kafka_and_postgres_listen(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = environment(services[name])
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{env['KAFKA_BOOTSTRAP_SERVERS']}" in advertised
    url = urlsplit(env["DATABASE_URL"])
    postgres = environment(services["postgres"])
    assert (url.hostname, url.port, url.username, url.password, url.path.lstrip("/")) == (
        "postgres", 5432, postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )


def test_the_kafka_image_is_the_version_the_launcher_runs(
    services: dict[str, dict[str, Any]],
) -> None:
    image, _, tag = services["kafka"]["image"].partition(":")
    assert (image, tag) == ("apache/kafka", Settings.model_fields["kafka_version"].default)


@pytest.mark.parametrize("name", [s for s in ENGINE_SERVICES if s != "setup"])
def test_every_engine_process_finds_the_registry_service_where_it_listens(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    registry = Settings(**{k.lower(): v for k, v in environment(services["registry"]).items()})
    url = urlsplit(environment(services[name])["SCHEMA_REGISTRY_URL"])
    assert (url.hostname, url.port) == ("registry", registry.schema_registry_port)
    assert registry.schema_registry_host == "0.0.0.0"  # reachable from the other containers
    assert services[name]["depends_on"]["registry"] == {"condition": "service_healthy"}
    assert services["registry"]["command"] == ["python", "-m", "infra.registry_server"]
