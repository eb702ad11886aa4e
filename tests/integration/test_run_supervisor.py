"""`oee run` supervises its children: a crashed stream worker is started again and orders keep
completing; SIGTERM still stops everything it started.

A real `python -m oee run` process against the session's Kafka and PostgreSQL (its own topics
and schema), its children found through /proc. Only processes this test started are signalled.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra import process
from oee.settings import Settings
from tests.integration.projection_support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.25", "slippageBps": 100}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningSystem:
    """`oee run` in its own session; `children()` maps each child's module to its pid."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = {**os.environ, **settings.as_environment(), "PYTHONPATH": str(REPO_ROOT),
               "RUN_RESTART_BACKOFF_MS": "200"}
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{settings.api_port}"
        self.proc = process.spawn([sys.executable, "-m", "oee", "run"], log_path=log_path,
                                  cwd=REPO_ROOT, env=env, die_with_parent=True)
        self.seen: set[int] = set()

    def children(self) -> dict[str, int]:
        found = {}
        for pid in _child_pids(self.proc.pid):
            argv = process.cmdline(pid).split()
            if "-m" in argv:
                found[argv[argv.index("-m") + 1]] = pid
                self.seen.add(pid)
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(word) for word in text.split()]


@pytest.fixture
def system(provisioned: Settings, tmp_path: Path) -> Iterator[RunningSystem]:
    settings = provisioned.model_copy(update={"api_port": free_port(), "data_dir": tmp_path})
    running = RunningSystem(settings, tmp_path / "oee-run.log")
    yield running
    process.terminate(running.proc.pid, timeout_s=30, child=running.proc)


async def order_completes(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/orders/execute", json=ORDER)
    assert response.status_code in (200, 201), response.text
    order_id = response.json()["orderId"]

    async def confirmed() -> bool:
        found = await client.get(f"/api/orders/{order_id}")
        return found.status_code == 200 and found.json()["status"] == "confirmed"

    await wait_until(confirmed, f"order {order_id} to be confirmed", timeout=90, interval=0.2)


async def test_a_killed_worker_is_restarted_and_orders_still_complete(
    provisioned: Settings, system: RunningSystem
) -> None:
    await wait_until(lambda: {"streams.worker", "api.server", "projections.projector",
                              "producers.feed"} <= set(system.children()),
                     "oee run to start its four children")
    first = system.children()
    async with httpx.AsyncClient(base_url=system.base_url, timeout=10) as client:
        await wait_until(lambda: _healthy(system.base_url), "the API to answer", timeout=90)
        await order_completes(client)

        os.kill(first["streams.worker"], signal.SIGKILL)  # our grandchild: started by this test

        await wait_until(
            lambda: system.children().get("streams.worker") not in (None, first["streams.worker"]),
            "a new worker process", timeout=30)
        await order_completes(client)
        # oee run printed where each process's metrics are; the restarted worker serves there.
        printed = dict(re.findall(r"(worker|projector) (http://127\.0\.0\.1:\d+)/metrics",
                                  system.log()))
        assert printed.keys() == {"worker", "projector"}
        for url in printed.values():
            await wait_until(lambda url=url: _healthy(url), f"{url}/health", timeout=60)
        api = (await client.get("/metrics")).text
        assert 'route="/api/orders/execute"' in api

    killed = first["streams.worker"]
    assert f"worker (pid {killed}) exited with -9; restarting in 0.2s (restart 1 of" in system.log()
    others = {name: pid for name, pid in system.children().items() if name != "streams.worker"}
    assert others == {name: pid for name, pid in first.items() if name != "streams.worker"}

    system.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(system.proc.wait, 60) == 0
    assert not [pid for pid in system.seen if process.is_alive(pid)]


async def _healthy(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            return (await client.get("/health")).status_code == 200
    except httpx.HTTPError:
        return False
