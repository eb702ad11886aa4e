"""Where the test services come from (tests/service_backends.py): the Docker probe against
real sockets that answer like an engine (or do not), and the choice each environment gets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.service_backends import Backend, Choice, choose, docker_engine

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
FAILING = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nerror"


@contextmanager
def answering(server: socket.socket, answer: bytes) -> Iterator[list[bytes]]:
    """Serve one connection on `server`: read the request, send `answer`, close."""
    requests: list[bytes] = []

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            requests.append(connection.recv(4096))
            connection.sendall(answer)

    server.listen()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield requests
    finally:
        thread.join(timeout=5)
        server.close()


def unix_server(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


def tcp_server() -> tuple[socket.socket, int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    return server, server.getsockname()[1]


def test_an_engine_answering_ping_on_the_default_socket_is_found(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with answering(unix_server(path), OK) as requests:
        assert docker_engine({}, default_socket=path) == f"unix://{path}"
    assert requests[0].startswith(b"GET /_ping HTTP/1.0\r\n")


def test_docker_host_over_tcp_is_probed_there(tmp_path: Path) -> None:
    server, port = tcp_server()
    with answering(server, OK):
        assert docker_engine({"DOCKER_HOST": f"tcp://127.0.0.1:{port}"},
                             default_socket=tmp_path / "absent.sock") == f"tcp://127.0.0.1:{port}"


def test_a_socket_that_answers_an_error_is_no_engine(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with answering(unix_server(path), FAILING):
        assert docker_engine({}, default_socket=path) is None


def test_a_socket_that_speaks_something_else_is_no_engine(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with answering(unix_server(path), b"SSH-2.0-OpenSSH\r\n"):
        assert docker_engine({}, default_socket=path) is None


def test_no_socket_no_listener_or_an_unknown_scheme_is_no_engine(tmp_path: Path) -> None:
    assert docker_engine({}, default_socket=tmp_path / "absent.sock") is None
    server, port = tcp_server()
    server.close()  # nothing listens there any more
    assert docker_engine({"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}) is None
    assert docker_engine({"DOCKER_HOST": "ssh://user@host"}) is None


ENGINE = "unix:///var/run/docker.sock"
LOCAL, CONTAINERS, EXTERNAL = Backend.LOCAL, Backend.CONTAINERS, Backend.EXTERNAL


@pytest.mark.parametrize(("env", "engine", "expected"), [
    ({}, None, Choice(LOCAL, LOCAL, "no Docker engine answers")),
    ({}, ENGINE, Choice(CONTAINERS, CONTAINERS, f"Docker engine at {ENGINE}")),
    ({"OEE_TEST_SERVICES": "local"}, ENGINE, Choice(LOCAL, LOCAL, "OEE_TEST_SERVICES=local")),
    ({"OEE_TEST_SERVICES": "containers"}, ENGINE,
     Choice(CONTAINERS, CONTAINERS, f"Docker engine at {ENGINE}")),
    ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, ENGINE,
     Choice(EXTERNAL, CONTAINERS, f"Docker engine at {ENGINE}")),
    ({"DATABASE_URL": "postgresql://db/x"}, None,
     Choice(LOCAL, EXTERNAL, "no Docker engine answers")),
])
def test_each_environment_gets_its_backends(
    env: dict[str, str], engine: str | None, expected: Choice
) -> None:
    assert choose(env, engine) == expected


def test_forcing_containers_without_an_engine_fails_with_the_reason() -> None:
    with pytest.raises(RuntimeError, match="no Docker engine answers"):
        choose({"OEE_TEST_SERVICES": "containers"}, None)


def test_an_unknown_forced_side_is_refused() -> None:
    with pytest.raises(ValueError, match="expected local or containers"):
        choose({"OEE_TEST_SERVICES": "cloud"}, None)


def test_the_choice_reads_as_one_line() -> None:
    assert choose({}, None).describe() == (
        "test services: kafka=local launcher, postgres=local launcher (no Docker engine answers)")
