"""The API, PostgreSQL and the Kafka broker crashing under load (issue 10 c, d, e).

(c) kills `oee api` while clients are posting: they retry the same `clientOrderId` until the
restarted API answers, so every order must exist exactly once. (d) and (e) SIGKILL a service
of the scenario's own (the session's are shared) and restart it on the same port and data.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from oee.settings import Settings
from tests.chaos.conftest import CHAOS_TIMING, Scoreboard
from tests.chaos.processes import run_cli
from tests.chaos.services import OwnBroker, OwnPostgres
from tests.chaos.system import System, hold_fault, wait_until

pytestmark = pytest.mark.timeout(900)

ORDERS, RATE = 300, 50
IN_FLIGHT = 5
FAULT_WAIT_S = 120.0


async def test_c_the_api_sigkilled_and_restarted_while_clients_retry(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE)
        firing = asyncio.create_task(load.run())
        await wait_until(lambda: load.settled >= 50, FAULT_WAIT_S, "50 orders accepted")
        system.api.kill()
        await hold_fault(1.5)
        system.api.start()
        restarted_at = time.time()
        await firing
        # The edge's recovery: from its restart to the first order it accepted afterwards.
        after = [s.accepted_at for s in load.submissions
                 if s.accepted_at is not None and s.accepted_at > restarted_at]
        verdict = await system.verdict(
            "c: API SIGKILL", "SIGKILL of the API, restarted after 1.5 s; clients retry",
            load, min(after) - restarted_at if after else None)
    scoreboard.record(verdict)
    verdict.assert_clean()
    assert verdict.accepted == ORDERS + 1, load.outcome_summary()


async def test_d_postgresql_sigkilled_and_restarted_under_load(
    chaos_settings: Settings, own_postgres: OwnPostgres, scoreboard: Scoreboard,
) -> None:
    settings = chaos_settings.model_copy(update={"database_url": own_postgres.dsn})
    await asyncio.to_thread(run_cli, settings, "db", "migrate")
    async with System(settings, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE)
        firing = asyncio.create_task(load.run())
        await wait_until(lambda: system.swaps_in_flight(load) >= IN_FLIGHT, FAULT_WAIT_S,
                         "swaps in flight")
        killed_at = time.time()
        own_postgres.kill()
        await hold_fault(2.0)
        await asyncio.to_thread(own_postgres.start)
        restarted_at = time.time()
        await firing
        verdict = await system.verdict(
            "d: PostgreSQL SIGKILL", "SIGKILL of PostgreSQL, restarted after 2 s",
            load, system.recovery_s(killed_at, restarted_at, load))
    scoreboard.record(verdict)
    verdict.assert_clean()


async def test_e_the_broker_sigkilled_and_restarted_under_load(
    settings: Settings, own_broker: OwnBroker, scoreboard: Scoreboard,
) -> None:
    ours = settings.model_copy(update={**CHAOS_TIMING,
                                       "kafka_bootstrap_servers": own_broker.bootstrap_servers})
    await asyncio.to_thread(run_cli, ours, "topics", "create")
    await asyncio.to_thread(run_cli, ours, "db", "migrate")
    async with System(ours, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE, give_up_after_s=240.0)
        firing = asyncio.create_task(load.run())
        await wait_until(lambda: system.swaps_in_flight(load) >= IN_FLIGHT, FAULT_WAIT_S,
                         "swaps in flight")
        killed_at = time.time()
        own_broker.kill()
        await hold_fault(2.0)
        await asyncio.to_thread(own_broker.start)
        restarted_at = time.time()
        system.phase(f"broker back after {restarted_at - killed_at:.0f} s")
        await firing
        verdict = await system.verdict(
            "e: broker SIGKILL", f"SIGKILL of the only broker, back {restarted_at - killed_at:.0f}"
            " s later", load, system.recovery_s(killed_at, restarted_at, load))
    scoreboard.record(verdict)
    verdict.assert_clean()
