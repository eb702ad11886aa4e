"""The broker's jars on a fresh machine: two processes starting a broker at once (two test
workers) each download, and both end up with one complete copy (infra.kafka.ensure_libs)."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.kafka import KafkaBroker

# Stands in for Maven: "downloads" a jar into -DoutputDirectory after a moment, so two calls
# overlap (each in its own staging directory, as two processes would).
FAKE_MVN = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; esac
done
mkdir -p "$out" && sleep 0.3 && echo jar > "$out/kafka_2.13-9.9.9.jar"
"""


def test_two_concurrent_downloads_leave_one_complete_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    mvn = tools / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    brokers = [KafkaBroker("9.9.9", 1, 2, tmp_path / f"kafka{i}", tmp_path / "cache")
               for i in range(2)]

    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda broker: broker.ensure_libs(), brokers))

    libs = brokers[0].libs_dir
    assert found == [libs, libs]
    assert (libs / "kafka_2.13-9.9.9.jar").read_text() == "jar\n"
    assert sorted(p.name for p in libs.parent.iterdir()) == [libs.name]  # no staging left
