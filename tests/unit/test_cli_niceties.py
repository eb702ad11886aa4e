"""`oee --version` and `oee infra status --json` (no services needed: nothing listens on the
addresses given, so both services read as stopped)."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from oee import cli


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"oee {importlib.metadata.version('oee')}"


def test_infra_status_json_is_one_object_per_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")

    code = cli.main(["infra", "status", "--json"])

    assert code == 1  # as without --json: not everything runs
    statuses = json.loads(capsys.readouterr().out)
    assert statuses == [
        {"name": "kafka", "address": "127.0.0.1:1", "running": False, "managed": False,
         "pid": None, "version": None},
        {"name": "postgres", "address": "postgresql://nobody@127.0.0.1:1/none",
         "running": False, "managed": False, "pid": None, "version": None},
        {"name": "schema-registry", "address": "http://127.0.0.1:1", "running": False,
         "managed": False, "pid": None, "version": None},
    ]


def test_json_is_only_for_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["infra", "down", "--json"])
    assert exit_.value.code == 2
    assert "--json goes with status only" in capsys.readouterr().err
