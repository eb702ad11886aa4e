"""Fixtures of the fault suite (`make chaos`): realistic venue timing, own services, the table.

Every test here is marked `chaos`. `chaos_settings` is the session fixtures' per-test
`provisioned` settings (own topics, schema and consumer group) with venues that take time and
fail now and then, so that faults hit orders in flight. `own_broker` / `own_postgres` start a
service the scenario may SIGKILL. Each scenario records its verdict on the `scoreboard`; the
table of all of them is printed at the end of the run and written to test-artifacts/chaos.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oee.settings import Settings
from tests.chaos.checker import TABLE_HEADER, Verdict
from tests.chaos.processes import ARTIFACTS
from tests.chaos.services import OwnBroker, OwnCluster, OwnPostgres

CHAOS_DIR = Path(__file__).parent

# Quotes 20-60 ms, swaps landing 0.3-0.8 s after submission, 5 % transient failures retried
# after 0.2 s then 0.4 s; a stalled order re-driven after 5 s; a silent worker's partitions
# moved after 6 s. Fast enough for small bounded scenarios, slow enough that every fault finds
# quotes and swaps in flight.
CHAOS_TIMING = {
    "venue_latency_min_ms": 20,
    "venue_latency_max_ms": 60,
    "confirm_delay_min_ms": 300,
    "confirm_delay_max_ms": 800,
    "transient_failure_rate": 0.05,
    "retry_base_delay_ms": 200,
    "stall_timeout_ms": 5000,
    "session_timeout_s": 6.0,
    "log_level": "INFO",
}


class Scoreboard:
    """The verdict of every scenario run in this session, in the order they ran."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    def record(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    def table(self) -> str:
        return "\n".join([TABLE_HEADER, *(v.row() for v in self.verdicts)])

    def report(self) -> str:
        details = [f"- **{v.scenario}**: " + "; ".join(v.problems)
                   for v in self.verdicts if v.problems]
        parts = ["# Fault suite (make chaos)", "", self.table()]
        if details:
            parts += ["", "## What broke", "", *details]
        return "\n".join(parts) + "\n"


_SCOREBOARD = pytest.StashKey[Scoreboard]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SCOREBOARD] = Scoreboard()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CHAOS_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chaos)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    scoreboard = terminalreporter.config.stash[_SCOREBOARD]
    if not scoreboard.verdicts:
        return
    terminalreporter.section("fault scenarios")
    terminalreporter.write_line(scoreboard.table())
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "chaos.md").write_text(scoreboard.report())
    terminalreporter.write_line(f"(also in {ARTIFACTS / 'chaos.md'})")


@pytest.fixture
def scoreboard(request: pytest.FixtureRequest) -> Scoreboard:
    return request.config.stash[_SCOREBOARD]


@pytest.fixture
def chaos_settings(provisioned: Settings) -> Settings:
    return provisioned.model_copy(update=CHAOS_TIMING)


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.close)


@pytest.fixture
async def own_cluster(service_settings: Settings) -> AsyncIterator[OwnCluster]:
    cluster = OwnCluster(service_settings)
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        await asyncio.to_thread(cluster.close)


@pytest.fixture
async def own_broker(service_settings: Settings) -> AsyncIterator[OwnBroker]:
    broker = OwnBroker(service_settings)
    try:
        await asyncio.to_thread(broker.start)
        yield broker
    finally:
        await asyncio.to_thread(broker.close)

