"""Start-up without the garbage collector (`oee.startup`), and Faust's registrations without
venusian's tags: a worker's start is most of a restarted worker's takeover.

Collection must always come back on: after a command returns, after it fails, after a bad
command line; only `oee worker` keeps it off past dispatch, until its app is built.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import faust.utils.venusian
import pytest

from oee import cli, startup
from oee.settings import Settings
from schemas.codec import Codec
from streams.app import Wire, create_app


@pytest.fixture(autouse=True)
def collection_on() -> Iterator[None]:
    yield
    gc.enable()  # whatever a failing test left


def test_pause_then_resume_turns_collection_back_on_and_freezes_what_start_up_made() -> None:
    frozen = gc.get_freeze_count()
    startup.pause()
    assert not gc.isenabled()
    survivors = [object() for _ in range(1000)]
    startup.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(survivors)
    gc.unfreeze()


def test_resume_without_a_pause_freezes_nothing() -> None:
    frozen = gc.get_freeze_count()
    startup.resume()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_a_command_runs_with_collection_on(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[bool] = []

    def handler(args: object, settings: Settings) -> int:
        seen.append(gc.isenabled())
        return 0

    parser = cli.build_parser([cli.Command("probe", "a probe", handler)])
    assert cli._dispatch(parser.parse_args(["probe"])) == 0
    assert seen == [True]


def test_collection_is_back_on_after_a_bad_command_line() -> None:
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
    assert gc.isenabled()


def test_collection_is_back_on_after_a_command_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTITIONS", "not a number")
    assert cli.main(["topics", "create"]) == cli.EXIT_PREREQUISITE
    assert gc.isenabled()


def test_only_the_worker_resumes_collection_itself() -> None:
    assert {c.name for c in cli.commands() if c.resumes_collection} == {"worker"}


def test_building_the_app_leaves_venusians_tagging_as_it_was(tmp_path: Path) -> None:
    attach = faust.utils.venusian.attach
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path)
    app = create_app(settings, "postgresql://127.0.0.1:9/none",
                     Wire(Codec.load(), lambda claimant, partition: b""))
    assert faust.utils.venusian.attach is attach
    assert {"order-writer", "routing-stage", "execution-stage"} <= {
        agent.split(".")[-1] for agent in app.agents}


def test_the_cli_imports_no_command_before_it_runs() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, oee.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert not {"faust", "psycopg", "aiokafka", "pydantic", "httpx"} & set(loaded)
