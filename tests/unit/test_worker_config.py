"""How a stream worker is configured: Faust's data directory under the settings' data
directory, static membership of the consumer group when it has a WORKER_ID, and no pause for
Faust tables before it joins the group.

Faust's default (`<app id>-data` in the current directory) littered the repository root with
one directory per test app, and a worker started from elsewhere wrote into that directory.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from oee.settings import Settings
from schemas.codec import Codec
from streams.app import Engine, Wire, create_app

# No registry in a unit test: the worker's wire without schema ids (the 0x0E framing).
OFFLINE = Wire(Codec.load(), lambda claimant, partition: b"")


def test_the_faust_data_directory_is_under_the_settings_data_directory(
    tmp_path: Path,
) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path,
                        engine_id="oee-datadir-test")

    app = create_app(settings, "postgresql://127.0.0.1:9/none", OFFLINE)

    assert Path(app.conf.datadir).resolve().is_relative_to(tmp_path.resolve())


def test_a_worker_with_an_id_is_a_static_member_of_the_group(tmp_path: Path) -> None:
    static = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path,
                      engine_id="oee-e", worker_id="w1")
    dynamic = static.model_copy(update={"worker_id": None})

    app = create_app(static, "postgresql://127.0.0.1:9/none", OFFLINE)

    assert app.conf.consumer_group_instance_id == "oee-e-w1"
    assert create_app(dynamic, "postgresql://127.0.0.1:9/none", OFFLINE).conf \
        .consumer_group_instance_id is None


async def test_a_worker_joins_its_group_without_faust_s_pause_for_tables(tmp_path: Path) -> None:
    """Faust's table manager sleeps 1 s before table recovery starts, and the worker's consumer
    subscribes (joins the group) only after that: every restart's takeover paid it."""
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path,
                        engine_id="oee-tables")
    app = create_app(settings, "postgresql://127.0.0.1:9/none", OFFLINE)
    recovery = StartedRecovery()
    cast(Any, app.tables)._recovery = recovery  # Faust's own would need a broker
    app.consumer = cast(Any, UnassignedConsumer())  # so would its consumer

    await asyncio.wait_for(app.tables.on_start(), timeout=0.5)

    assert recovery.started
    await asyncio.wait_for(app.tables.wait_until_tables_registered(), timeout=0.5)


class StartedRecovery:
    started = False

    async def start(self) -> None:
        self.started = True


class UnassignedConsumer:
    def assignment(self) -> set[object]:
        return set()

    def pause_partitions(self, partitions: set[object]) -> None:
        assert not partitions



async def test_the_engine_begins_at_the_first_rebalance_callback_before_the_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust starts the app's tasks only after the first assignment's recovery: the pool and
    the market's catch-up waited for the join. Its revocation callback comes before it."""
    began: list[Engine] = []
    monkeypatch.setattr(Engine, "begin", lambda engine: began.append(engine))
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path,
                        engine_id="oee-begin")
    app = create_app(settings, "postgresql://127.0.0.1:9/none", OFFLINE)

    await app.on_partitions_revoked.send(set())

    assert len(began) == 1


def test_a_survivor_learns_of_a_rebalance_within_half_a_second(tmp_path: Path) -> None:
    """It learns from the answer to its next heartbeat: the interval is part of a takeover."""
    for session_s in (10.0, 6.0, 1.2):
        settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path,
                            engine_id="oee-heartbeat", session_timeout_s=session_s)

        conf = create_app(settings, "postgresql://127.0.0.1:9/none", OFFLINE).conf

        assert conf.broker_heartbeat_interval <= min(0.5, session_s / 3)


def test_the_worker_entry_point_imports_faust_only_when_it_runs() -> None:
    """So that a restart's heaviest imports overlap the registry's round trips (streams.worker);
    a process of its own: this one imported Faust long ago."""
    probe = ("import sys, streams.worker; "
             "print(sorted(m for m in ('faust', 'aiohttp', 'streams.app') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, timeout=120, cwd=Path(__file__).parents[2])

    assert found.stdout.strip() == "[]", found.stderr
