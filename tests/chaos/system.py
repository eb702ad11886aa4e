"""The engine under test as a set of `oee` processes, plus the auditor that watches it.

Consumes a provisioned Settings (topics created, schema migrated). Produces a running system:
`oee projector`, `oee api` on a free loopback port and `workers` × `oee worker`, all in one
consumer group; an `EventFollower` reading `orders.events`; and, once a warm-up order has gone
all the way through, a system a scenario can load and hurt. At the end it drains (waits, with
a deadline, until every order has ended), gathers what the checker needs with plain SQL and
Kafka reads, and stops every process it started.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime

import psycopg

from oee.settings import Settings
from tests.chaos.checker import (
    ChainRow,
    Expectations,
    Observed,
    ReadModelRow,
    Verdict,
    judge,
    read_model_mismatches,
)
from tests.chaos.event_log import REFUSED_LATE, EventFollower, EventLog, dead_letter_types
from tests.chaos.load import OpenLoopLoad
from tests.chaos.processes import OeeProcess, free_port, run_cli

POLL_S = 0.1
START_TIMEOUT_S = 180.0  # three Python processes booting on a machine shared with other suites
DRAIN_TIMEOUT_S = 300.0  # generous: other suites may be loading the machine
STUCK_AFTER_S = 60.0  # no new event for this long while orders are open: they are stuck
CONVERGE_TIMEOUT_S = 90.0


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; an AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(POLL_S)


async def hold_fault(seconds: float) -> None:
    """Keep an injected fault in place for `seconds`: the fault's length, not a synchronisation."""
    await asyncio.sleep(seconds)


SWAPS_IN_FLIGHT = 5  # swaps submitted and not yet settled when a fault strikes
FAULT_WAIT_S = 120.0


async def provisioned_on(settings: Settings, bootstrap_servers: str, **extra: object) -> Settings:
    """`settings` moved to a Kafka of the scenario's own: its topics created, the read model
    migrated (the session's services have both already)."""
    ours = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers, **extra})
    await asyncio.to_thread(run_cli, ours, "topics", "create")
    await asyncio.to_thread(run_cli, ours, "db", "migrate")
    return ours


class System:
    def __init__(self, settings: Settings, workers: int = 1) -> None:
        self.settings = settings.model_copy(update={"api_host": "127.0.0.1",
                                                    "api_port": free_port()})
        self.base_url = f"http://127.0.0.1:{self.settings.api_port}"
        self.projector = OeeProcess(self.settings, "projector", "projector")
        self.api = OeeProcess(self.settings, "api", "api")
        # Each worker a static member of the group (WORKER_ID), as `oee run` starts its own.
        self.workers = [OeeProcess(self.settings.model_copy(update={"worker_id": f"worker{i}"}),
                                   "worker", f"worker{i}") for i in range(workers)]
        self.follower = EventFollower(self.settings)
        self.warmup_order: str | None = None
        self._began = time.monotonic()

    def phase(self, what: str) -> None:
        """A line in the test's output, so a slow scenario shows where its time went."""
        print(f"[chaos {time.monotonic() - self._began:6.1f}s] {what}", flush=True)

    @property
    def log(self) -> EventLog:
        return self.follower.log

    async def __aenter__(self) -> System:
        await self.follower.__aenter__()
        try:
            for process in (self.projector, *self.workers, self.api):
                process.start()
            await self._warm_up()
            self.phase("warmed up")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for process in (self.api, *self.workers, self.projector):
                await asyncio.to_thread(process.stop)
        finally:
            await self.follower.__aexit__()

    async def _warm_up(self) -> None:
        """One order all the way through: every process is up and consuming before a fault."""
        load = OpenLoopLoad(self.base_url, f"{self.settings.engine_id}-warmup", count=1,
                            rate=1, give_up_after_s=START_TIMEOUT_S)
        await load.run()
        accepted = list(load.accepted)
        assert accepted, (f"the API never accepted the warm-up order: {load.outcome_summary()}; "
                          f"api log: {self.api.log_tail()}")
        self.warmup_order = accepted[0]
        await wait_until(lambda: self.log.terminal(accepted[0]) is not None, START_TIMEOUT_S,
                         f"the warm-up order to end (worker log: {self.workers[0].log_tail()})")

    def load(self, count: int, rate: float, give_up_after_s: float = 120.0) -> OpenLoopLoad:
        return OpenLoopLoad(self.base_url, self.settings.engine_id, count=count, rate=rate,
                            give_up_after_s=give_up_after_s)

    # --- conditions scenarios wait for ---------------------------------------------------

    async def until_swaps_in_flight(self, load: OpenLoopLoad) -> None:
        """Wait until the fault finds swaps submitted and not yet settled (SWAPS_IN_FLIGHT)."""
        await wait_until(lambda: self.swaps_in_flight(load) >= SWAPS_IN_FLIGHT, FAULT_WAIT_S,
                         "swaps in flight")

    def swaps_in_flight(self, load: OpenLoopLoad) -> int:
        """Accepted orders whose swap is submitted and not yet settled."""
        return sum(1 for order_id in load.accepted
                   if self.log.terminal(order_id) is None
                   and any(e.type == "TransactionSubmitted"
                           for e in self.log.by_order.get(order_id, ())))

    def events_since(self, moment_wall: float) -> int:
        since_ms = int(moment_wall * 1000)
        return sum(1 for records in self.log.by_partition.values()
                   for r in records if r.timestamp_ms > since_ms)

    # --- measuring -------------------------------------------------------------------------

    def open_partitions_at(self, moment_wall: float, load: OpenLoopLoad) -> set[int]:
        """Partitions that had an accepted order in flight at `moment_wall` (from the log)."""
        moment_ms = int(moment_wall * 1000)
        accepted_at = {o: s.accepted_at for o, s in load.accepted.items()}
        partitions: set[int] = set()
        for order_id, events in self.log.by_order.items():
            started = min(e.timestamp_ms for e in events) <= moment_ms or (
                (accepted_at.get(order_id) or float("inf")) <= moment_wall)
            end = self.log.terminal(order_id)
            if started and (end is None or end.timestamp_ms > moment_ms):
                partitions.update(e.partition for e in events)
        return partitions

    def takeover_s(self, fault_wall: float, measured_from_wall: float,
                   load: OpenLoopLoad, until_wall: float | None = None) -> float | None:
        """From `measured_from_wall` to the first event each moved partition's new owner wrote
        (the first event after its claim), the slowest of the partitions that had orders in
        flight at `fault_wall` and were claimed after it (one not claimed did not move).
        Unlike `recovery_s`, a record the faulty worker itself still appended after the fault
        never counts. A partition without such an event before `until_wall` (the next fault)
        is left out. None: no moved partition had an event."""
        return slowest_s(self.new_owners_first_events(fault_wall, load, until_wall),
                         measured_from_wall)

    def new_owners_first_events(self, fault_wall: float, load: OpenLoopLoad,
                                until_wall: float | None = None) -> dict[int, int | None]:
        """Each partition in flight at `fault_wall`: the time (ms) of the first event its new
        owner wrote after claiming it (`takeover_s`), None if none before `until_wall`."""
        since_ms = int(fault_wall * 1000)
        until_ms = None if until_wall is None else int(until_wall * 1000)
        return {p: self.log.first_event_of_new_owner(p, since_ms, until_ms)
                for p in sorted(self.open_partitions_at(fault_wall, load))}

    def worker_timeline(self, worker: OeeProcess, since_wall: float,
                        until_wall: float | None = None) -> None:
        """Print the phases the worker logged itself (`streams.timeline`) in a time span."""
        try:
            text = worker.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["time"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if record.get("logger") == "streams.timeline" and since_wall <= at and (
                    until_wall is None or at < until_wall):
                self.phase(f"  {worker.name}: {record.get('message')}")

    def recovery_s(self, fault_wall: float, measured_from_wall: float,
                   load: OpenLoopLoad) -> float | None:
        """From `measured_from_wall` to the first event after it on the partitions that had
        orders in flight at `fault_wall`, the slowest of them. A partition whose orders all
        ended before `measured_from_wall` had nothing left to recover; None: no event came."""
        partitions = self.open_partitions_at(fault_wall, load)
        since_ms = int(measured_from_wall * 1000)
        firsts = [f for p in partitions if (f := self.log.first_after(since_ms, {p}))]
        return max(firsts) / 1000 - measured_from_wall if firsts else None

    # --- the end of a scenario -------------------------------------------------------------

    def orders_to_hold(self, load: OpenLoopLoad) -> set[str]:
        orders = set(load.accepted) | set(self.log.by_order)
        if self.warmup_order:
            orders.add(self.warmup_order)
        return orders

    async def drain(self, load: OpenLoopLoad) -> None:
        """Wait until every order has ended, or the deadline, or nothing moved for a minute.

        Never fails: what did not end is for the checker to report, with its history.
        """
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        why = "every order ended"
        while self.log.open_orders(self.orders_to_hold(load)):
            if time.monotonic() > deadline:
                why = f"deadline of {DRAIN_TIMEOUT_S:.0f} s"
                break
            if time.monotonic() - self.log.last_progress > STUCK_AFTER_S:
                why = f"no new event for {STUCK_AFTER_S:.0f} s"
                break
            await asyncio.sleep(POLL_S)
        self.phase(f"drained: {why} ({len(self.log.open_orders(self.orders_to_hold(load)))} "
                   "orders open)")
        ends = await self.follower.end_offsets()
        await wait_until(lambda: self.follower.caught_up_with(ends), CONVERGE_TIMEOUT_S,
                         "the auditor to read orders.events to its end")

    async def observe(self, load: OpenLoopLoad) -> Observed:
        """What the checker needs; waits (bounded) for the read model to catch up first."""
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while True:
            read_model = await asyncio.to_thread(self._read_model)
            if not read_model_mismatches(self.log, read_model) or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S * 5)
        self.phase("read model converged" if not read_model_mismatches(self.log, read_model)
                   else "read model did NOT converge")
        accepted = set(load.accepted)
        if self.warmup_order:
            accepted.add(self.warmup_order)
        return Observed(log=self.log, accepted=frozenset(accepted),
                        chain=tuple(await asyncio.to_thread(self._chain)),
                        read_model=tuple(read_model),
                        dead_letters=await self.dead_letters(refused_late=False))

    async def dead_letters(self, *, refused_late: bool) -> int:
        """Dead letters that are the writer's refusals of late commands, or all the others."""
        types = await dead_letter_types(self.settings)
        return sum((kind == REFUSED_LATE) == refused_late for kind in types)

    async def verdict(self, scenario: str, injected: str, load: OpenLoopLoad,
                      recovery_s: float | None,
                      expectations: Expectations = Expectations()) -> Verdict:
        await self.drain(load)
        return judge(scenario, injected, await self.observe(load), expectations, recovery_s)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        assert self.settings.database_url
        return psycopg.connect(self.settings.database_url, connect_timeout=10,
                               options=f"-c search_path={self.settings.db_schema}")

    def _read_model(self) -> list[ReadModelRow]:
        with self._connect() as db:
            rows = db.execute("SELECT order_id, status, seq FROM orders").fetchall()
        return [ReadModelRow(str(o), str(s), int(q)) for o, s, q in rows]  # type: ignore[call-overload]

    def _chain(self) -> list[ChainRow]:
        with self._connect() as db:
            rows = db.execute("SELECT signature, order_id, attempt, status, duplicate_submissions "
                              "FROM sim_chain_transactions").fetchall()
        return [ChainRow(str(a), str(b), int(c), str(d), int(e))  # type: ignore[call-overload]
                for a, b, c, d, e in rows]


def slowest_s(firsts: dict[int, int | None], measured_from_wall: float) -> float | None:
    """From `measured_from_wall` to the latest of the partitions' first events (ms); None
    when none of them has one."""
    known = [at for at in firsts.values() if at is not None]
    return max(known) / 1000 - measured_from_wall if known else None
