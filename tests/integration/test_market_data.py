"""Market data end to end: producers -> market.prices / market.pools -> every process's market.

Real Kafka (each test its own topics); the follower and the random feed run in-process, the
scripted feed and a stream worker as real processes. Every wait polls a condition against a
deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from domain.market import Market
from domain.market_events import (
    LiquidityChanged,
    MarketChange,
    Pair,
    PoolCreated,
    PoolSnapshot,
    PriceTick,
    pool_state,
)
from domain.orders.events import RouteSelected
from domain.tokens import SOL, USDC, USDT, Token
from domain.venues.raydium import RaydiumPool
from infra import process
from oee.settings import FeedMode, Settings
from producers.feed import run_feed
from producers.publisher import publish
from marketdata.follower import MarketFollower
from marketdata.view import MarketView
from tests.harness import EventLog, edge, wait_until, wait_until_async, workers

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 20.0
WIF = Token("WIF", "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", 6)


def tick(price: str, venue: str | None = "raydium", quote: Token = USDC) -> PriceTick:
    return PriceTick(event_id=f"tick-{price}", occurred_at=datetime.now(UTC), venue=venue,
                     base_mint=SOL.mint, quote_mint=quote.mint, price=Decimal(price))


def sol_at(price: str) -> list[PriceTick]:
    """SOL at `price` in both stablecoins on every venue: moving SOL/USDC alone would leave
    SOL -> USDT -> USDC paying the old price, and routing would take that path."""
    return [tick(price, venue=None), tick(price, venue=None, quote=USDT)]


def sol_price(view: MarketView, venue: str = "raydium") -> Decimal:
    pool = view.current().pool(venue, SOL.mint, USDC.mint)
    assert pool is not None
    return pool.spot_price(SOL.mint)


def near(price: Decimal, target: str, tolerance: str = "1e-9") -> bool:
    return abs(price / Decimal(target) - 1) < Decimal(tolerance)


@pytest.fixture
async def follower(provisioned: Settings) -> AsyncIterator[MarketFollower]:
    async with MarketFollower(provisioned, MarketView(Market.default())) as running:
        yield running


async def test_a_published_tick_reaches_a_running_followers_market_and_its_listeners(
    provisioned: Settings, follower: MarketFollower
) -> None:
    changes: list[MarketChange] = []
    follower.subscribe(changes.append)

    await publish(provisioned, [tick("150")])

    await wait_until(lambda: near(sol_price(follower.view), "150"), DEADLINE_S, "the tick")
    assert [change.pair for change in changes] == [Pair.of(SOL.mint, USDC.mint)]
    assert sol_price(follower.view, "meteora") == sol_price(MarketView(Market.default()),
                                                             "meteora")


async def test_a_follower_started_after_the_ticks_catches_up_to_the_latest_price(
    provisioned: Settings,
) -> None:
    listed = RaydiumPool.from_price(WIF, SOL, 10**12, Decimal("0.01"))
    listing = PoolCreated(event_id="wif", occurred_at=datetime.now(UTC), venue="raydium",
                          token_x=WIF, token_y=SOL, state=pool_state(listed),
                          liquidity_usd=Decimal("3700"))
    for price in ("150", "160", "170"):  # one at a time: three separate records
        await publish(provisioned, [tick(price)])
    await publish(provisioned, [listing])

    view = MarketView(Market.default())
    async with MarketFollower(provisioned, view) as late:
        # `async with` returns once every record that existed at start is applied.
        assert late.caught_up
        assert near(sol_price(view), "170")
        assert view.current().pool("raydium", WIF.mint, SOL.mint) == listed
        assert late.stats.applied == 4


async def test_a_record_that_is_not_a_market_event_is_skipped_and_the_next_one_applied(
    provisioned: Settings, follower: MarketFollower
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers)
    await producer.start()
    try:
        pair = Pair.of(SOL.mint, USDC.mint).key  # same partition as the tick that follows
        await producer.send_and_wait(provisioned.topics.prices, b"{\"price\": 1}", key=pair)
    finally:
        await producer.stop()
    await publish(provisioned, [tick("140")])

    await wait_until(lambda: near(sol_price(follower.view), "140"), DEADLINE_S, "the tick")
    assert follower.stats.undecodable == 1


async def test_the_random_feed_moves_the_market_and_lists_tokens_and_moves_liquidity(
    provisioned: Settings, follower: MarketFollower
) -> None:
    busy = provisioned.model_copy(update={"feed_interval_ms": 50, "feed_listing_rate": 1.0,
                                          "feed_liquidity_rate": 1.0})
    seen: set[type[object]] = set()
    follower.subscribe(lambda change: seen.update(type(e) for e in change.events))
    stop = asyncio.Event()
    feed = asyncio.create_task(run_feed(busy, stop))
    try:
        await wait_until(lambda: {PoolSnapshot, PoolCreated, LiquidityChanged} <= seen,
                         DEADLINE_S, "snapshots, a listing and a liquidity change")
    finally:
        stop.set()
        await asyncio.wait_for(feed, DEADLINE_S)
    market = follower.view.current()
    assert len(market.pools) > len(Market.default().pools)  # the listings
    # The walk: a constant-product pool is repriced every step (a DLMM pool only per bin).
    assert sol_price(follower.view) != sol_price(MarketView(Market.default()))


async def test_a_restarted_random_feed_resumes_from_the_market_kafka_holds(
    provisioned: Settings, follower: MarketFollower
) -> None:
    wild = provisioned.model_copy(update={"feed_interval_ms": 20, "feed_volatility_bps": 300,
                                          "feed_listing_rate": 0.0, "feed_liquidity_rate": 0.0})
    seed_price = sol_price(MarketView(Market.default(wild.market_seed)))
    snapshots: list[PoolSnapshot] = []
    follower.subscribe(lambda change: snapshots.extend(
        e for e in change.events if isinstance(e, PoolSnapshot) and e.venue == "raydium"
        and e.pair == Pair.of(SOL.mint, USDC.mint)))

    async def run_until(reached: Callable[[], bool], why: str) -> None:
        stop = asyncio.Event()
        feed = asyncio.create_task(run_feed(wild, stop))
        try:
            await wait_until(reached, DEADLINE_S, why)
        finally:
            stop.set()
            await asyncio.wait_for(feed, DEADLINE_S)

    def far_from_seed() -> bool:
        return bool(snapshots) and abs(price_of(snapshots[-1]) / seed_price - 1) > Decimal("0.1")

    await run_until(far_from_seed, "the walk 10 % away from the seed price")
    await wait_until(lambda: sol_price(follower.view) == price_of(snapshots[-1]), DEADLINE_S,
                     "the follower at the first run's last price")
    first_run = len(snapshots)
    left_at = price_of(snapshots[-1])

    await run_until(lambda: len(snapshots) > first_run, "a snapshot of the second run")

    resumed_at = price_of(snapshots[first_run])
    # One step of 3 % at most (plus pool noise) from where it left, far from the seed.
    assert abs(resumed_at / left_at - 1) < Decimal("0.08"), (left_at, resumed_at, seed_price)
    assert abs(resumed_at / left_at - 1) < abs(resumed_at / seed_price - 1)


def price_of(snapshot: PoolSnapshot) -> Decimal:
    return snapshot.pool().spot_price(SOL.mint)


@pytest.fixture
def scripted_feed(provisioned: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m producers.feed` playing a two-tick script, as `oee run` would start it."""
    script = tmp_path / "ticks.jsonl"
    script.write_text(
        '{"atMs": 0, "topic": "prices", "type": "PriceTick", "baseMint": "SOL", '
        '"quoteMint": "USDC", "price": "120"}\n'
        '{"atMs": 300, "topic": "prices", "type": "PriceTick", "venue": "raydium", '
        '"baseMint": "SOL", "quoteMint": "USDC", "price": "125"}\n'
    )
    configured = provisioned.model_copy(update={"feed_mode": FeedMode.SCRIPTED,
                                                "feed_script": script})
    env = {**os.environ, **configured.as_environment(), "PYTHONPATH": str(REPO_ROOT)}
    child = process.spawn([sys.executable, "-m", "producers.feed"],
                          log_path=tmp_path / "feed.log", cwd=REPO_ROOT, env=env,
                          die_with_parent=True)
    try:
        yield child
    finally:
        process.terminate(child.pid, timeout_s=10, child=child)


async def test_the_feed_process_plays_its_script_then_stays_up_until_stopped(
    follower: MarketFollower, scripted_feed: subprocess.Popen[bytes]
) -> None:
    await wait_until(lambda: near(sol_price(follower.view), "125"), DEADLINE_S, "the script")
    assert near(sol_price(follower.view, "meteora"), "120", "0.0006")  # the first tick: all venues
    assert scripted_feed.poll() is None  # `oee run` reads an exited child as a failure

    os.killpg(scripted_feed.pid, signal.SIGTERM)
    await wait_until(lambda: scripted_feed.poll() is not None, DEADLINE_S, "the feed to stop")
    assert scripted_feed.returncode == 0


async def test_the_quote_endpoint_prices_from_the_market_topics(provisioned: Settings) -> None:
    await publish(provisioned, sol_at("150"))

    async with edge(provisioned) as client:  # its lifespan catches up before serving
        response = await client.get("/api/quote",
                                    params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"})

    assert response.status_code == 200, response.text
    assert Decimal("149") < Decimal(response.json()["price"]) < Decimal("150")


async def test_the_market_board_shows_each_venues_price_as_the_topics_move_it(
    provisioned: Settings
) -> None:
    def sol_usdc(board: dict[str, Any]) -> dict[str, str]:
        (pair,) = [p for p in board["pairs"]
                   if (p["base"]["symbol"], p["quote"]["symbol"]) == ("SOL", "USDC")]
        return {venue["venue"]: venue["price"] for venue in pair["venues"]}

    async with edge(provisioned) as client:
        before = sol_usdc((await client.get("/api/market/prices")).json())
        await publish(provisioned, [tick("150", venue="raydium")])

        async def moved() -> bool:
            now = sol_usdc((await client.get("/api/market/prices")).json())
            return near(Decimal(now["raydium"]), "150", "1e-6")

        await wait_until_async(moved, DEADLINE_S, "the board at raydium's new price")
        board = (await client.get("/api/market/prices")).json()
        after = sol_usdc(board)

    assert set(before) == {"raydium", "meteora"}
    assert near(Decimal(before["raydium"]), "185", "0.01")
    assert after["meteora"] == before["meteora"]  # the tick named one venue
    assert all("E" not in price for price in after.values())  # plain decimals, exact strings
    fees = {venue["venue"]: venue["feeBps"] for pair in board["pairs"]
            for venue in pair["venues"] if pair["base"]["symbol"] == "SOL"
            and pair["quote"]["symbol"] == "USDC"}
    assert fees == {"raydium": "25", "meteora": "20"}


async def test_a_token_listed_on_the_market_topics_becomes_known_to_the_api(
    provisioned: Settings
) -> None:
    listing = RaydiumPool.from_price(WIF, SOL, 5_000_000 * 10**6, Decimal("0.01"))
    listed = PoolCreated(event_id="wif-listed", occurred_at=datetime.now(UTC), venue="raydium",
                         token_x=WIF, token_y=SOL, state=pool_state(listing),
                         liquidity_usd=Decimal("18500"))
    quote = {"tokenIn": "SOL", "tokenOut": WIF.symbol, "amountIn": "1"}

    async with edge(provisioned) as client:
        unknown = await client.get("/api/quote", params=quote)
        await publish(provisioned, [listed])
        answers: list[int] = []

        async def known() -> bool:
            answers.append((await client.get("/api/quote", params=quote)).status_code)
            return answers[-1] == 200

        await wait_until_async(known, DEADLINE_S, "the API quoting the listed token by symbol")
        by_mint = await client.get("/api/quote", params=quote | {"tokenOut": WIF.mint})

    assert unknown.status_code == 400 and "WIF" in unknown.text
    assert by_mint.status_code == 200, by_mint.text
    assert Decimal(by_mint.json()["price"]) > 90  # ~100 WIF per SOL, less fee and impact


async def test_a_worker_routes_on_the_market_the_topics_describe(provisioned: Settings) -> None:
    await publish(provisioned, sol_at("150"))

    async with workers(provisioned), EventLog(provisioned) as log, edge(provisioned) as client:
        response = await client.post("/api/orders/execute", json={
            "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "slippageBps": 100})
        assert response.status_code == 201, response.text
        order_id = response.json()["orderId"]

        def routed() -> RouteSelected | None:
            found = [e for e in log.by_order.get(order_id, []) if isinstance(e, RouteSelected)]
            return found[0] if found else None

        await wait_until(lambda: routed() is not None, 60, "the order to be routed")

    decision = routed()
    assert decision is not None
    # 1 SOL at 150 USDC less fees and impact, not the seed market's 185.
    assert 149_000_000 < decision.decision.amount_out < 150_000_000
