"""What `oee run` hands its children: a stream worker is a static member of its group under a
name that survives its restarts (issue 10 "fast takeover")."""

from __future__ import annotations

import socket

import pytest

from oee.run import child_environment
from oee.settings import Settings


def test_the_worker_slot_has_a_stable_worker_id_of_this_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKER_ID", raising=False)
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")

    first, restarted = (child_environment(settings, "worker") for _ in range(2))

    assert first["WORKER_ID"] == f"{socket.gethostname()}-worker"
    assert restarted["WORKER_ID"] == first["WORKER_ID"]


def test_an_explicit_worker_id_wins() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", worker_id="blue")

    assert child_environment(settings, "worker")["WORKER_ID"] == "blue"


def test_the_other_children_are_no_members_of_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKER_ID", raising=False)
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")

    for name in ("projector", "api", "feed"):
        assert "WORKER_ID" not in child_environment(settings, name)
