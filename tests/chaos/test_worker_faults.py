"""Stream workers crashing, dying for good, and freezing past their session (issue 10 a, b, f).

In f the frozen worker wakes up as a zombie writer; the writer fence (`schemas.writer_fence`)
keeps what it appends after the survivor's claims out of every reader's history.

Each scenario runs `oee projector`, `oee api` and `oee worker` processes under open-loop load,
hurts a worker while swaps are in flight, and holds the outcome to the shared checker. A
control run without a fault shows the checker passes a healthy system.

The recovery they report is the takeover (issue 10's target, <= 3 s): from a worker's restart
(a), or from the group noticing a death (b, f: the broker's session timeout ran out), to the
first event the new owner of each moved partition wrote after its claim. The phases the
workers logged themselves (`streams.timeline`) are printed with it (`-s`).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from oee.settings import Settings
from tests.chaos.conftest import Scoreboard
from tests.chaos.system import (
    FAULT_WAIT_S,
    SWAPS_IN_FLIGHT,
    System,
    hold_fault,
    slowest_s,
    wait_until,
)

pytestmark = pytest.mark.timeout(900)

CRASHES = 5  # of the only worker, under load (scenario a)
LOAD_CAP = 3000  # orders at most: scenario a stops its load after the last takeover


async def test_control_without_a_fault(chaos_settings: Settings, scoreboard: Scoreboard) -> None:
    async with System(chaos_settings, workers=1) as system:
        load = system.load(count=300, rate=50)
        await load.run()
        verdict = await system.verdict("control", "none", load, recovery_s=None)
    scoreboard.record(verdict)
    verdict.assert_clean()
    assert verdict.accepted == 301, load.outcome_summary()  # and the warm-up order


async def test_a_worker_sigkilled_five_times_under_load(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=1) as system:
        (worker,) = system.workers
        # A longer, gentler load than the other scenarios, still arriving when the last
        # restart takes over (a takeover with no command coming would measure the load's end):
        # it stops once that restart has written on every partition it took over.
        load = system.load(count=LOAD_CAP, rate=20)
        firing = asyncio.create_task(load.run())
        crashes: list[tuple[float, float]] = []
        for crash in range(CRASHES):
            since = crashes[-1][1] if crashes else 0.0
            await wait_until(
                lambda: system.events_since(since) > 0
                and system.swaps_in_flight(load) >= SWAPS_IN_FLIGHT,
                FAULT_WAIT_S, f"swaps in flight before crash {crash + 1}")
            killed_at = time.time()
            worker.kill()
            await hold_fault(1.5)
            worker.start()
            crashes.append((killed_at, time.time()))
        last_killed_at = crashes[-1][0]
        moved = system.open_partitions_at(last_killed_at, load)
        await wait_until(
            lambda: all(system.log.first_event_of_new_owner(p, int(last_killed_at * 1000))
                        for p in moved), FAULT_WAIT_S, "the last restart's first events")
        assert not firing.done(), f"the load ran out ({load.fired} orders) before the last takeover"
        load.stop()
        await firing
        await system.drain(load)  # the last restart's first events may still be to come
        # Each restart's own: up to the next crash (that worker may not have written on a
        # partition before it was killed again; its successor's events are not its takeover).
        ends = [killed_at for killed_at, _ in crashes[1:]] + [time.time()]
        recoveries = []
        for (killed_at, restarted_at), end in zip(crashes, ends, strict=True):
            firsts = system.new_owners_first_events(killed_at, load, end)
            recovery = slowest_s(firsts, restarted_at)  # what takeover_s gives, computed once
            recoveries.append(recovery)
            system.phase(f"restart -> first event of every moved partition: {_s(recovery)} ("
                         + ", ".join(f"p{p} {_s(None if at is None else at / 1000 - restarted_at)}"
                                     for p, at in firsts.items()) + ")")
            system.worker_timeline(worker, restarted_at, end)
        verdict = await system.verdict(
            f"a: worker SIGKILL x{CRASHES}",
            f"{CRASHES} SIGKILLs of the only worker, restarted after 1.5 s",
            load, _slowest(recoveries))
    scoreboard.record(verdict)
    verdict.assert_clean()


async def test_b_one_of_two_workers_sigkilled(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=2) as system:
        doomed, survivor = system.workers
        await _wait_for_members(system.settings, 2)  # one may start late: both own a share
        load = system.load(count=300, rate=50)
        firing = asyncio.create_task(load.run())
        await system.until_swaps_in_flight(load)
        killed_at = time.time()
        doomed.kill()
        noticed_at = await _noticed(system.settings)
        await firing
        await system.drain(load)
        recovery = system.takeover_s(killed_at, noticed_at, load)
        system.phase(f"the group noticed the death {noticed_at - killed_at:.1f} s after the "
                     f"kill; first event of every moved partition {_s(recovery)} later")
        system.worker_timeline(survivor, killed_at)
        verdict = await system.verdict(
            "b: 1 of 2 workers SIGKILL", "SIGKILL of one of two workers, never restarted",
            load, recovery)
        assert survivor.alive, survivor.log_tail()
    scoreboard.record(verdict)
    verdict.assert_clean()


async def test_f_a_worker_frozen_past_its_session_comes_back_as_a_zombie(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=2) as system:
        frozen, survivor = system.workers
        await _wait_for_members(system.settings, 2)  # one may start late: both own a share
        load = system.load(count=300, rate=50)
        firing = asyncio.create_task(load.run())
        await system.until_swaps_in_flight(load)
        stopped_at = time.time()
        frozen.pause()
        noticed_at = await _noticed(system.settings)
        # Frozen until the group has dropped it and the survivor has written since: by then
        # the survivor owns the frozen worker's partitions and has decided on its orders.
        await _wait_for_members(system.settings, 1)
        evicted_at = time.time()
        await wait_until(lambda: system.events_since(evicted_at) > 0, FAULT_WAIT_S,
                         "the survivor to write after taking over")
        frozen.resume()
        await firing
        await system.drain(load)
        recovery = system.takeover_s(stopped_at, noticed_at, load)
        system.phase(f"the group noticed the silence {noticed_at - stopped_at:.1f} s after the "
                     f"SIGSTOP; first event of every moved partition {_s(recovery)} later")
        system.worker_timeline(survivor, stopped_at)
        verdict = await system.verdict(
            "f: worker SIGSTOP > session", "SIGSTOP of one of two workers until the group "
            f"evicted it ({evicted_at - stopped_at:.0f} s), then SIGCONT",
            load, recovery)
        # What the zombie appended after the survivor's claims: fenced off, not counted.
        system.phase(f"writer fence: {system.log.claims} claims, {system.log.stale} records "
                     "of a deposed writer dropped")
    scoreboard.record(verdict)
    verdict.assert_clean()


def _slowest(recoveries: list[float | None]) -> float | None:
    measured = [r for r in recoveries if r is not None]
    return max(measured) if measured else None


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


async def _noticed(settings: Settings) -> float:
    """When the group stopped being Stable with every member (the broker's session of a dead
    or frozen worker ran out, and it rebalances): the moment a survivor can learn of it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + FAULT_WAIT_S
        _, members = await _group_state(admin, settings.engine_id)
        while True:
            state, count = await _group_state(admin, settings.engine_id)
            if state != "Stable" or count < members:
                return time.time()
            assert time.monotonic() < deadline, f"group {state} with {count} members"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def _wait_for_members(settings: Settings, members: int) -> None:
    """Until the workers' consumer group is Stable with exactly `members` members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + FAULT_WAIT_S
        while True:
            state, count = await _group_state(admin, settings.engine_id)
            if state == "Stable" and count == members:
                return
            assert time.monotonic() < deadline, f"group {state} with {count} members"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _group_state(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int]:
    (response,) = await admin.describe_consumer_groups([group])
    # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members, ...)
    description = response.groups[0]
    return str(description[2]), len(description[5])
