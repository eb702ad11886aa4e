"""The in-process half of the limit benchmark: the pure book and the trigger stage, no Kafka.

A market of 20 pairs: the default market's 9 (SOL/USDC, SOL/USDT, USDC/USDT, BONK/SOL,
JUP/SOL, RAY/USDC, mSOL/SOL, BONK/USDC, JUP/USDC, on Raydium and Meteora) plus 11 synthetic
tokens TKN01..TKN11, each listed against USDC in a Raydium pool $2M deep at $1. 100,000
waiting limit orders, 5,000 per pair, both directions, ten sizes from $10 to $50,000; each
limit lies 0.2%..10% above what its own size fetches now, so every order waits.

Ticks are a seeded random walk: one pair at a time moves up to 25 bps (`PriceTick`, folded
into the market with `market_events.fold` as the market follower does), then the stage
evaluates. A sink stands in for the writer: each report removes its order from the book and
a new order takes its place (limit above the price again), so the book stays at 100,000.

Measured per run: ticks/s sustained (fold + evaluation + reports), tick -> report latency
for every fired order (p50/p99: from the tick handed to the stage until its report was sent)
and the exact prices computed per tick (what the bound saved).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from domain.market import DEFAULT_REFERENCE_USD, Market
from domain.market_events import PriceTick, fold
from domain.orders.commands import Command
from domain.orders.signatures import b58encode
from domain.tokens import USDC, Token
from domain.venues.raydium import RaydiumPool
from domain.waiting_book import Direction, WaitingBook, WaitingLimit, executable_price
from streams.market_view import MarketView
from streams.trigger_stage import TriggerStage

SYNTHETIC: Final = 11
SIZES_USD: Final = (10, 50, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
T0: Final = datetime(2025, 3, 1, 12, tzinfo=UTC)


def bench_market() -> tuple[Market, list[tuple[str, str]], dict[str, Decimal]]:
    """The 20-pair market, its pairs (mints) and a USD price per mint."""
    market = Market.default()
    usd = dict(DEFAULT_REFERENCE_USD)
    for i in range(1, SYNTHETIC + 1):
        name = f"TKN{i:02}"
        token = Token(name, b58encode(hashlib.sha256(name.encode()).digest()), 6)
        market = market.with_pool(RaydiumPool.from_price(token, USDC, 1_000_000 * 10**6,
                                                         Decimal(1)))
        usd[token.mint] = Decimal(1)
    pairs = sorted({tuple(sorted((p.token_x.mint, p.token_y.mint))) for p in market.pools})
    assert len(pairs) == 20, len(pairs)
    return market, [(a, b) for a, b in pairs], usd


class Orders:
    """Makes waiting orders: limits above what their size fetches in the market now."""

    def __init__(self, market: Market, pairs: list[tuple[str, str]], usd: dict[str, Decimal],
                 rng: random.Random) -> None:
        self._rng, self._usd, self._count = rng, usd, 0
        self.directions = [Direction(a, b) for a, b in pairs] + [Direction(b, a) for a, b in pairs]
        self._prices: dict[tuple[Direction, int], Decimal] = {}
        self._amounts: dict[Direction, list[int]] = {}
        self.refresh(market)

    def refresh(self, market: Market) -> None:
        """Price each (direction, size) once: new orders are placed above these."""
        for direction in self.directions:
            for amount in self.sizes(market, direction):
                price = executable_price(market, direction, amount)
                if price is not None:
                    self._prices[direction, amount] = price
            self._amounts[direction] = [a for a in self.sizes(market, direction)
                                        if (direction, a) in self._prices]

    def sizes(self, market: Market, direction: Direction) -> list[int]:
        token = market.token(direction.token_in)
        return [int(Decimal(size) / self._usd[token.mint] * 10**token.decimals) or 1
                for size in SIZES_USD]

    def make(self, direction: Direction | None = None) -> WaitingLimit:
        self._count += 1
        while True:
            chosen = direction or self._rng.choice(self.directions)
            if self._amounts[chosen]:
                amount = self._rng.choice(self._amounts[chosen])
                break
        markup = Decimal(self._rng.randint(20, 1_000)) / 10_000  # 0.2% .. 10% above
        limit = (self._prices[chosen, amount] * (1 + markup)).quantize(Decimal("1e-12"))
        return WaitingLimit(f"o{self._count}", chosen, amount, limit.normalize())


async def one_run(orders_total: int, ticks: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    market, pairs, usd = bench_market()
    view = MarketView(market)
    orders = Orders(market, pairs, usd, rng)
    ticked_at: list[float] = [0.0]
    latencies: list[float] = []

    async def writer(command: Command) -> None:  # plays the order agent: the order leaves
        latencies.append(time.perf_counter() - ticked_at[0])
        stage.book.remove(command.order_id)
        stage.book.put(orders.make())

    stage = TriggerStage(view, writer, lambda: T0, best_price_interval_s=0)
    per_direction = orders_total // len(orders.directions)
    for direction in orders.directions:
        for _ in range(per_direction):
            stage.book.put(orders.make(direction))
    started = time.perf_counter()
    for n in range(ticks):
        base, quote = rng.choice(pairs)
        pool = view.current().pools_between(base, quote)[0]
        price = pool.spot_price(base) * (1 + Decimal(rng.randint(-25, 25)) / 10_000)
        tick = PriceTick(event_id=f"t{n}", occurred_at=T0, venue=None, base_mint=base,
                         quote_mint=quote, price=price.quantize(Decimal("1e-12")))
        ticked_at[0] = time.perf_counter()
        folded = fold(view.current(), [tick])
        view.replace(folded.market)
        for change in folded.changes:
            stage.on_market_change(change)
        await stage.evaluate()
        if n % 500 == 499:
            orders.refresh(view.current())  # new orders follow the market
    elapsed = time.perf_counter() - started
    return {
        "orders": len(stage.book), "pairs": len(pairs), "ticks": ticks,
        "ticks_per_s": round(ticks / elapsed, 1),
        "fired": stage.stats.fired, "fired_per_tick": round(stage.stats.fired / ticks, 2),
        "priced_per_tick": round(stage.stats.priced / ticks, 2),
        "tick_to_triggered_p50_ms": _pct(latencies, 50),
        "tick_to_triggered_p99_ms": _pct(latencies, 99),
    }


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] * 1000, 3)


def run(orders_total: int, ticks: int, runs: int) -> dict[str, Any]:
    results = [asyncio.run(one_run(orders_total, ticks, seed)) for seed in range(runs)]
    keys = [k for k, v in results[0].items() if isinstance(v, int | float)]
    medians = {k: sorted(r[k] for r in results)[len(results) // 2] for k in keys
               if all(r[k] is not None for r in results)}
    return {"median": medians, "runs": results}
