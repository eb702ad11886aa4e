"""The read side while PostgreSQL is down (issue 10): every read route answers 503 with
Retry-After (never a 500), `/ready` names the database, the routes that need no database
keep working, the WebSockets keep serving the live feed, and all recover with the server.

The session's PostgreSQL is shared by every test, so this module stops and restarts a second
embedded server of its own (real PostgreSQL, real Kafka; nothing is mocked).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.live.config import LiveConfig
from bench.order_histories import HistoryMaker
from infra import process
from infra.postgres import EmbeddedPostgres
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from projections.migrate import migrate
from tests.e2e.live_harness import EventWriter, expected, read_stream, seen, serving, until

UNKNOWN = "00000000-0000-4000-8000-000000000000"
READS = (
    "/api/orders",
    f"/api/orders/{UNKNOWN}",
    f"/api/orders/{UNKNOWN}?asOf=2025-01-06T09:30:00Z",
    f"/api/orders/{UNKNOWN}/events",
    "/api/projections/status",
    "/api/metrics",
)
QUOTE = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}
DB_WAIT_S = 1.0


class Restartable:
    """A PostgreSQL server of this module's own, to stop and start at will."""

    def __init__(self) -> None:
        data = Path(tempfile.mkdtemp(prefix="oee-test-outage-"))
        data.chmod(0o755)  # the server runs as its own unprivileged user
        port = next(p for p in random.sample(range(30000, 32000), 50) if process.port_is_free(p))
        self.server = EmbeddedPostgres(data, port, durable=False)
        self._child = self.server.start(die_with_parent=True)

    @property
    def running(self) -> bool:
        return self._child is not None

    def stop(self) -> None:
        self.server.stop(child=self._child)
        self._child = None

    def start(self) -> None:
        self._child = self.server.start(die_with_parent=True)

    def remove(self) -> None:
        if self._child is not None:
            self.stop()
        shutil.rmtree(self.server.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Restartable]:
    server = Restartable()
    yield server
    server.remove()


@pytest.fixture
def on_own_postgres(provisioned: Settings, own_postgres: Restartable) -> Settings:
    """The test's settings, reading a migrated read model on the module's own server."""
    if not own_postgres.running:
        own_postgres.start()
    settings = provisioned.model_copy(update={"database_url": own_postgres.server.dsn})
    migrate(own_postgres.server.dsn, settings.db_schema)
    return settings


async def until_true(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_every_read_answers_503_with_retry_after_while_postgres_is_down(
    on_own_postgres: Settings, own_postgres: Restartable
) -> None:
    app = bootstrap(on_own_postgres, Replacements(db_wait_s=DB_WAIT_S))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://edge.test"
    ) as http:
        before = {path: (await http.get(path)).status_code for path in READS}
        own_postgres.stop()
        started = time.monotonic()
        during = {path: await http.get(path) for path in READS}
        rebuild = await http.post("/api/projections/rebuild")
        took = time.monotonic() - started
        ready = await http.get("/ready")
        quote = await http.get("/api/quote", params=QUOTE)
        health = await http.get("/health")
        prometheus = await http.get("/metrics")
        own_postgres.start()

        async def recovered() -> bool:
            codes = [(await http.get(path)).status_code for path in READS]
            return all(code < 500 for code in codes)

        await until_true(recovered, 60, "the read routes to recover")
        ready_again = await http.get("/ready")

    assert before == {path: 404 if UNKNOWN in path else 200 for path in READS}
    for path, answer in [*during.items(), ("POST rebuild", rebuild)]:
        body: dict[str, Any] = answer.json()
        assert (path, answer.status_code, body["error"]) == (path, 503, "read_model_unavailable")
        assert answer.headers["Retry-After"] == "2"
        assert "PostgreSQL" in body["message"]
    assert took < (len(READS) + 1) * (DB_WAIT_S + 1.5)  # a bounded wait each, not 10 s
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["postgres"]["ok"] is False and checks["kafka"]["ok"] is True
    assert checks["projector"] == {"ok": False, "error": "PostgreSQL is not reachable"}
    # No database needed: /metrics is the process's own figures, no SQL on a scrape.
    assert (quote.status_code, health.status_code, prometheus.status_code) == (200, 200, 200)
    assert "oee_http_request_duration_seconds_bucket" in prometheus.text
    assert ready_again.json()["checks"]["postgres"] == {"ok": True}


async def test_the_streams_keep_serving_the_live_feed_while_postgres_is_down(
    on_own_postgres: Settings, own_postgres: Restartable
) -> None:
    maker = HistoryMaker(seed=23, start=datetime.now(UTC))
    history = next(h for h in maker.orders(20) if len(h) >= 6)
    order_id = history[0].order_id
    app = bootstrap(on_own_postgres, Replacements(
        db_wait_s=0.5, live=LiveConfig(unknown_order_wait_s=2.0)))
    async with serving(app) as api, EventWriter(on_own_postgres) as writer:
        own_postgres.stop()
        one = asyncio.create_task(read_stream(f"{api.url}/api/orders/{order_id}/stream"))
        every = asyncio.create_task(read_stream(f"{api.url}/api/orders/stream/all",
                                                limit=len(history)))
        await until(lambda: api.subscribers() >= 2, 10, "both clients to subscribe")
        await writer.send_all(history)
        order, everything = await one, await every
        unknown = await read_stream(f"{api.url}/api/orders/{UNKNOWN}/stream")

    assert seen(order) == expected(history)
    assert (order.code, order.reason) == (1000, f"order {expected(history)[-1][2]}")
    assert [m["seq"] for m in everything.messages] == [e.seq for e in history]
    # An order the live feed never brought may sit in the unreachable read model: the
    # stream says so instead of "not found".
    assert unknown.code == 1011 and "read model is unavailable" in unknown.reason
