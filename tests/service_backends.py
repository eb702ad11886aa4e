"""Where the test session's Kafka and PostgreSQL come from: the environment's, containers of a
reachable Docker engine (testcontainers), or the local launcher.

Consumes the environment (`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`, `DOCKER_HOST`,
`OEE_TEST_SERVICES=local|containers` to force a side) and a probe of the Docker engine
(`GET /_ping` on its socket); produces a `Choice` with the reason, which conftest logs once
per session, and the container context managers. The schema registry is always ours: it
runs beside whichever PostgreSQL was chosen.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

DOCKER_SOCKET = Path("/var/run/docker.sock")
PING = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
PROBE_TIMEOUT_S = 2.0


class Backend(StrEnum):
    EXTERNAL = "external"
    CONTAINERS = "testcontainers"
    LOCAL = "local launcher"


@dataclass(frozen=True, slots=True)
class Choice:
    kafka: Backend
    postgres: Backend
    reason: str

    def describe(self) -> str:
        return f"test services: kafka={self.kafka}, postgres={self.postgres} ({self.reason})"


def docker_engine(env: Mapping[str, str], default_socket: Path = DOCKER_SOCKET) -> str | None:
    """Where a Docker engine answers `_ping` with OK (`unix:///...` or `tcp://host:port`), or
    None when none does."""
    where = env.get("DOCKER_HOST") or f"unix://{default_socket}"
    url = urlsplit(where)
    try:
        if url.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(PROBE_TIMEOUT_S)
                sock.connect(url.path)
                answer = _exchange(sock)
        elif url.scheme in ("tcp", "http") and url.hostname and url.port:
            with socket.create_connection((url.hostname, url.port), PROBE_TIMEOUT_S) as sock:
                answer = _exchange(sock)
        else:
            return None
    except OSError:
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].split()
    ok = len(status) >= 2 and status[0].startswith(b"HTTP/") and status[1] == b"200"
    return where if ok and body.strip() == b"OK" else None


def _exchange(sock: socket.socket) -> bytes:
    sock.sendall(PING)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def choose(env: Mapping[str, str], engine: str | None) -> Choice:
    """The backend of each service; `engine` is `docker_engine(env)`'s answer."""
    forced = env.get("OEE_TEST_SERVICES", "").strip().lower()
    if forced not in ("", "local", "containers"):
        raise ValueError(f"OEE_TEST_SERVICES={forced!r}: expected local or containers")
    if forced == "containers" and engine is None:
        raise RuntimeError("OEE_TEST_SERVICES=containers but no Docker engine answers")
    use_containers = engine is not None and forced != "local"
    wanted = Backend.CONTAINERS if use_containers else Backend.LOCAL
    kafka = Backend.EXTERNAL if env.get("KAFKA_BOOTSTRAP_SERVERS") else wanted
    postgres = Backend.EXTERNAL if env.get("DATABASE_URL") else wanted
    if forced == "local":
        reason = "OEE_TEST_SERVICES=local"
    elif engine is not None:
        reason = f"Docker engine at {engine}"
    else:
        reason = "no Docker engine answers"
    return Choice(kafka, postgres, reason)


@contextmanager
def kafka_container(version: str, port: int) -> Iterator[str]:
    """Apache Kafka `version` (KRaft, one node) in a container; yields its bootstrap address.

    The host port is fixed (the test's free port) because the broker must advertise it."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer(f"apache/kafka:{version}")
        .with_bind_ports(port, port)
        .with_envs(
            KAFKA_NODE_ID="1", KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS=f"PLAINTEXT://:{port},CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        )
    )
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


@contextmanager
def postgres_container() -> Iterator[str]:
    """PostgreSQL 17 in a container; yields a psycopg DSN."""
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("postgres:17", driver=None) as container:
        yield container.get_connection_url()
