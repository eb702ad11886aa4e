"""Clients of the five engines this one replaces, replayed against the whole running engine.

Real Kafka, PostgreSQL, a worker process and the projector; the API is served by uvicorn and
reached over real HTTP and WebSocket connections at the URLs each seed engine's README
documents. Each client submits its seed's documented order, follows it at its seed's stream
URL, then reads it back, and asserts what that seed's clients rely on: status codes, the
fields they read, the status names they switch on, a stream that ends after the terminal
status. The request bodies alone (every seed's, and the refusals) are replayed in
tests/unit/test_seed_clients.py. Every wait is a condition polled against a deadline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from api.app import create_app
from oee.settings import Settings
from tests.e2e.live_harness import Received, projecting, read_stream, serving, until
from tests.harness import workers
from tests.integration.conditional_support import tick

MARKET = ["pending", "routing", "building", "submitted", "confirmed"]  # 000's lifecycle, in order
LIMIT = ["pending", "waiting", "routing", "building", "submitted", "confirmed"]

# seed -> (its documented body, the stream URL its clients open, the statuses they may see)
SEEDS: dict[str, tuple[bytes, str, list[str]]] = {
    "000": (b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "100", '
            b'"slippageTolerance": 0.5}', "/api/orders/{id}/stream", MARKET),
    "001": (b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 1, '
            b'"slippage": 0.01}', "/api/orders/{id}/stream", MARKET),
    "002": (b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 1.0, '
            b'"slippage": 0.01}', "/api/orders/{id}/stream", MARKET),
    "003": (b'{"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, '
            b'"targetPrice": 185}', "/?orderId={id}", LIMIT),
    "004": (b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1.5, "slippage": 0.01}',
            "/api/orders/{id}/stream", MARKET),
}


async def submit(http: httpx.AsyncClient, body: bytes) -> str:
    response = await http.post("/api/orders/execute", content=body,
                               headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["status"], answer["success"]) == ("pending", True)
    return str(answer["orderId"])


async def follow(ws_base: str, path: str, settings: Settings, limit_order: bool) -> Received:
    """Read the order's stream to its end; a limit order gets a price that fires it."""
    reading = asyncio.create_task(read_stream(ws_base + path, timeout=120))
    if limit_order:
        await tick(settings, "200")  # 1 SOL now fetches more than the target of 185 USDC
    return await reading


async def poll_json(http: httpx.AsyncClient, path: str, done: Any, what: str,
                    timeout: float = 60) -> dict[str, Any]:
    """GET `path` until `done(status, body)` holds (the read model may lag the stream)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(path)
        body: dict[str, Any] = response.json()
        if done(response.status_code, body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {response.status_code} {body}")
        await asyncio.sleep(0.1)


def assert_lifecycle(order_id: str, received: Received, allowed: list[str]) -> None:
    """What every seed's stream client relies on: its order's messages, statuses from its
    vocabulary in lifecycle order, starting pending, ending confirmed, then a normal close."""
    statuses = [message["status"] for message in received.messages]
    assert all(m["orderId"] == order_id and m["timestamp"] for m in received.messages)
    assert statuses[0] == "pending" and statuses[-1] == "confirmed", statuses
    firsts = list(dict.fromkeys(statuses))
    assert firsts == [s for s in allowed if s in firsts], statuses  # in order, none foreign
    assert "routing" in firsts and "submitted" in firsts
    confirmed = received.messages[-1]["data"]
    assert confirmed["executedPrice"] and confirmed["signature"]  # 001: data.txHash
    assert received.code == 1000, (received.code, received.reason)


async def watch_all(ws_base: str, order_ids: set[str], seen: dict[str, list[str]]) -> None:
    """002's dashboard: every order's statuses on /api/orders/stream/all, until all end."""
    async with connect(ws_base + "/api/orders/stream/all") as ws:
        async for text in ws:
            message = orjson.loads(text)
            seen.setdefault(message["orderId"], []).append(message["status"])
            if all("confirmed" in seen.get(order_id, []) for order_id in order_ids):
                return


async def test_each_seeds_client_follows_its_order_at_its_url_and_reads_it_back(
    provisioned: Settings,
) -> None:
    app = create_app(provisioned)
    async with workers(provisioned), projecting(provisioned), serving(app) as api, \
            httpx.AsyncClient(base_url=api.http, timeout=30) as http:
        assert (await http.get("/api/health")).json()["status"] == "ok"  # 001 and 000 probe
        ids = {seed: await submit(http, body) for seed, (body, _, _) in SEEDS.items()}
        followed = await asyncio.gather(*(
            follow(api.url, url.format(id=ids[seed]), provisioned, seed == "003")
            for seed, (_, url, _) in SEEDS.items()))
        for (seed, (_, _, allowed)), received in zip(SEEDS.items(), followed, strict=True):
            assert_lifecycle(ids[seed], received, allowed)

        for order_id in ids.values():  # 000, 001, 002: GET /api/orders/:orderId
            order = await poll_json(http, f"/api/orders/{order_id}",
                                    lambda code, body: code == 200
                                    and body["status"] == "confirmed", f"order {order_id}")
            assert order["orderId"] == order_id and order["executedPrice"]
        stats = await poll_json(http, "/api/orders/stats",  # 004
                                lambda code, body: code == 200
                                and body["orders"]["byStatus"].get("confirmed") == len(ids),
                                "the stats to count every order")
        assert stats["orders"]["total"] == len(ids) and stats["timestamp"]
        metrics = await http.get("/api/metrics")  # 002
        assert metrics.status_code == 200 and metrics.json()["orders"]["total"] == len(ids)


async def test_the_all_orders_stream_shows_every_order_to_its_end(provisioned: Settings) -> None:
    app = create_app(provisioned)
    async with workers(provisioned), projecting(provisioned), serving(app) as api, \
            httpx.AsyncClient(base_url=api.http, timeout=30) as http:
        seen: dict[str, list[str]] = {}
        order_ids: set[str] = set()
        watcher = asyncio.create_task(watch_all(api.url, order_ids, seen))
        await until(lambda: api.subscribers() == 1, 30, "the all-orders subscription")
        body = SEEDS["002"][0]
        order_ids.update([await submit(http, body), await submit(http, body)])
        await asyncio.wait_for(watcher, 120)

    for order_id in order_ids:
        assert seen[order_id][-1] == "confirmed"
        assert set(seen[order_id]) <= set(MARKET), seen[order_id]


async def test_an_id_that_names_no_order_is_404_on_every_order_url(
    provisioned: Settings,
) -> None:
    app = create_app(provisioned)
    async with projecting(provisioned), serving(app) as api, \
            httpx.AsyncClient(base_url=api.http, timeout=30) as http:
        for path in ("/api/orders/abc-123-456", "/api/orders/abc-123-456/events"):
            answer = await http.get(path)
            assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), path
        cancel = await http.post("/api/orders/abc-123-456/cancel")
        assert cancel.status_code == 404
        streams = await asyncio.gather(*(read_stream(api.url + path, timeout=30) for path in (
            "/api/orders/abc-123-456/stream", "/?orderId=abc-123-456", "/")))

    assert [(s.code, s.messages) for s in streams] == [(4404, []), (4404, []), (4400, [])]
    assert "not found" in streams[1].reason and "orderId is required" in streams[2].reason
