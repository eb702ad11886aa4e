"""The CPU an API key costs one POST, with nothing else on the path: the command edge alone
in this process (no Kafka, no PostgreSQL: an acknowledging sender and an in-memory key
table), AUTH_MODE=on and off alternating (A, B, A, B, ...), sequential POSTs through ASGI.

Complements `bench.auth_bench` (the whole stack), whose figures on a shared machine carry
the noise of every other process: this one measures what the key check itself adds, as
wall-clock POSTs/s and as this process's CPU time per POST (what other processes on the
machine disturb least).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka.structs import RecordMetadata, TopicPartition
from pydantic import SecretStr

from api.auth.keys import Scope, key_text, secret_hash
from api.auth.store import StoredKey
from api.command_bus import CommandSender
from domain.market import Market
from domain.orders.commands import EdgeCommand
from marketdata.view import MarketView
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import AuthMode, Settings

SECRET = "bench-secret-" + "0" * 40
KEY_ID, KEY_SECRET = "0123456789abcdef", "B" * 43


class _Acknowledged:
    async def send(self, command: EdgeCommand) -> RecordMetadata:
        return RecordMetadata("t", 0, TopicPartition("t", 0), 0, -1, -1, 0)


class _OneKey:
    async def find(self, key_id: str) -> StoredKey | None:
        stored = secret_hash(SECRET.encode(), KEY_ID, KEY_SECRET)
        return StoredKey(Scope.TRADE, stored, False) if key_id == KEY_ID else None


@asynccontextmanager
async def _edge(mode: AuthMode) -> AsyncIterator[httpx.AsyncClient]:
    @asynccontextmanager
    async def open_commands() -> AsyncIterator[CommandSender]:
        yield _Acknowledged()

    settings = Settings(auth_mode=mode, auth_secret=SecretStr(SECRET), rate_limit_per_s=1e9,
                        rate_limit_burst=1_000_000_000)
    app = bootstrap(settings, Replacements(
        open_commands=open_commands, market=MarketView(Market.default(settings.market_seed)),
        keys=_OneKey()), read_side=False)
    headers = {"Authorization": f"Bearer {key_text(KEY_ID, KEY_SECRET)}"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://edge.bench",
            headers=headers if mode is AuthMode.ON else {}) as client:
        yield client


async def _run(mode: AuthMode, posts: int) -> tuple[float, float]:
    """(POSTs per second, CPU microseconds per POST)."""
    async with _edge(mode) as client:
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(posts):
            answer = await client.post("/api/orders/execute", json={
                "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": f"0.{(i % 999) + 1:03d}",
                "slippageBps": 100, "clientOrderId": f"k-{i}"})
            if answer.status_code != 201:
                raise RuntimeError(f"POST answered {answer.status_code}: {answer.text[:200]}")
        return (posts / (time.perf_counter() - started),
                (time.process_time() - cpu) / posts * 1e6)


def run_all(quick: bool = False) -> dict[str, Any]:
    pairs, posts = (4, 300) if quick else (10, 1000)
    asyncio.run(_run(AuthMode.ON, 200))  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for _ in range(pairs):
        for side, mode in (("on", AuthMode.ON), ("off", AuthMode.OFF)):
            rate, cpu_us = asyncio.run(_run(mode, posts))
            runs[side].append((round(rate, 1), round(cpu_us, 1)))
    rates = {side: statistics.median(r for r, _ in found) for side, found in runs.items()}
    cpu = {side: statistics.median(c for _, c in found) for side, found in runs.items()}
    return {"posts_per_run": posts, "order": "on, off, on, off, ...",
            "median_posts_per_s": rates, "median_cpu_us_per_post": cpu,
            "ratio_on_off_posts_per_s": round(rates["on"] / rates["off"], 3),
            "cpu_cost_on_vs_off": round(cpu["on"] / cpu["off"] - 1, 3),
            "runs_posts_per_s_and_cpu_us": runs}
