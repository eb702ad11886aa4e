"""A worker restarted under its WORKER_ID takes back exactly its own partitions, at once, and the
other worker is not moved (issue 10 "fast takeover": static membership of the group, KIP-345).

Two real worker processes, each a static member. What they do is read from the event store
alone: a worker taking a partition appends a claim record naming itself (`host:pid`,
`schemas.writer_fence`), and a partition a worker keeps across a rebalance is not claimed
again. The session is far longer than the test waits, so a restarted worker that had to wait
out its dead predecessor's session (a dynamic member) could not pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaConsumer

from oee.settings import Settings
from schemas.writer_fence import CLAIM_HEADER
from tests.harness import WorkerProcess, wait_until

SESSION_S = 60.0  # no restart in this test may take this long
START_S = 180.0  # two Python processes booting on a loaded machine


class Claims:
    """Follows orders.events: who claimed each partition last, and every claim seen."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = AIOKafkaConsumer(
            settings.topics.events, bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
            fetch_max_wait_ms=20)
        self.seen: list[tuple[int, str]] = []  # (partition, claimant), in the order read
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Claims:
        await self._consumer.start()
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self) -> None:
        async for record in self._consumer:
            claimant = dict(record.headers or ()).get(CLAIM_HEADER)
            if claimant is not None:
                self.seen.append((record.partition, claimant.decode()))

    def owned_by(self, pid: int) -> set[int]:
        """The partitions whose last claim is by the process `pid`."""
        last = dict(self.seen)
        return {p for p, claimant in last.items() if claimant.endswith(f":{pid}")}

    def claims_by(self, pid: int) -> int:
        return sum(claimant.endswith(f":{pid}") for _, claimant in self.seen)


@contextmanager
def static_workers(settings: Settings, *ids: str) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(settings.model_copy(update={"worker_id": i}), f"worker-{i}").start()
               for i in ids]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def pid(worker: WorkerProcess) -> int:
    assert worker.proc is not None
    return worker.proc.pid


async def test_a_restarted_worker_takes_its_own_partitions_back_and_the_other_keeps_its_own(
    provisioned: Settings,
) -> None:
    settings = provisioned.model_copy(update={"session_timeout_s": SESSION_S,
                                              "log_level": "INFO"})
    async with Claims(settings) as claims:
        with static_workers(settings, "a", "b") as (a, b):
            await wait_until(
                lambda: claims.owned_by(pid(a)) and claims.owned_by(pid(b))
                and claims.owned_by(pid(a)) | claims.owned_by(pid(b)) == set(
                    range(settings.partitions)),
                START_S, "both workers to own their share of the partitions")
            mine, theirs = claims.owned_by(pid(a)), claims.owned_by(pid(b))
            # The claims land before b has logged the rebalance that brought a in: only its
            # own later lines may count against it.
            await wait_until(lambda: b.settled_on(len(theirs)), START_S,
                             "the other worker to log its share ready")
            claims_of_b = claims.claims_by(pid(b))
            b_logged = b.log_path.stat().st_size

            a.kill()
            killed_at = time.monotonic()
            a.start()
            await wait_until(lambda: claims.owned_by(pid(a)) == mine, SESSION_S - 10,
                             f"the restarted worker to claim {sorted(mine)} again")
            took_s = time.monotonic() - killed_at

            assert claims.owned_by(pid(b)) == theirs
            assert claims.claims_by(pid(b)) == claims_of_b, "the other worker was moved"
            assert took_s < SESSION_S / 2, f"took {took_s:.1f} s: it waited for the session"
            # Not even paused: the group did not rebalance (the worker's timeline logs each one).
            with open(b.log_path, "rb") as log:
                log.seek(b_logged)
                assert b"rebalance: " not in log.read()
