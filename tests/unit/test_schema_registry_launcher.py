"""The registry side of the launcher without a registry running: where processes look for it,
and the one-line errors when it cannot start or cannot be reached."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.errors import PrerequisiteError
from infra.schema_registry import (
    LocalRegistry,
    local_registry,
    registered_codec,
    registry_answers,
    registry_url,
)
from infra.services import LocalServices
from oee.settings import Settings


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_external_registry_wins_over_the_local_one(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path, schema_registry_port=18555)
    assert registry_url(local) == "http://127.0.0.1:18555"
    external = local.model_copy(update={"schema_registry_url": "http://registry:8081"})
    assert registry_url(external) == "http://registry:8081"
    assert LocalServices.from_settings(external).registry is None
    assert LocalServices.from_settings(local).registry == LocalRegistry(18555,
                                                                        tmp_path / "registry")


def test_a_taken_registry_port_is_a_prerequisite_error_naming_the_setting(
    taken_port: int, tmp_path: Path
) -> None:
    registry = local_registry(Settings(data_dir=tmp_path, schema_registry_port=taken_port))
    with pytest.raises(PrerequisiteError, match=f"port {taken_port} .*SCHEMA_REGISTRY_PORT"):
        registry.start("postgresql://127.0.0.1:1/none")
    assert not registry.pid_file.exists()


def test_an_unreachable_registry_stops_a_writer_at_start_with_what_to_do(
    closed_port: int, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, schema_registry_url=f"http://127.0.0.1:{closed_port}")
    assert not registry_answers(settings.schema_registry_url or "")
    with pytest.raises(PrerequisiteError,
                       match="not reachable.*`oee infra up`.*SCHEMA_REGISTRY_URL"):
        registered_codec(settings)


def test_a_registry_that_cannot_reach_its_database_exits_with_its_log_named(
    closed_port: int, tmp_path: Path
) -> None:
    registry = LocalRegistry(closed_port, tmp_path)
    with pytest.raises(PrerequisiteError, match=f"exited with .*{tmp_path}/registry.log"):
        registry.start("postgresql://127.0.0.1:1/none?connect_timeout=1")
    assert registry.running_pid() is None
