"""The end-to-end half of the limit benchmark: through Kafka and a real stream worker.

One throwaway stack (`bench.stack`: Kafka, PostgreSQL, one stream worker, the API) with zero
venue latency and confirmation delay and no bestPrice updates. `waiting` limit orders SOL->USDC
(limits 260+, never reached) are produced straight to `orders.commands`, as the edge would, and
left waiting; per round a further group of `crossing` orders (limit 200 + 5r) and of
`snipers` (USDC -> a token of the round, not listed yet) wait too. Then each round publishes
a `PriceTick` to 202.5 + 5r, which crosses exactly its group, and then that round's listing:

- tick published -> OrderTriggered (the writer's decision, as the event store stamps it),
- tick published -> TransactionSubmitted,
- listing published -> TransactionSubmitted of the round's snipers (the sniper latency).

`first` is the first order of a group to get there (the path itself, unloaded); p50/p99 add
the burst: every fired order then goes through the routing and execution stages at once.
Times are one machine's clock: the bench stamps a market event just before an open producer
sends it, the worker stamps the order's events. A marketable limit order warms the pipeline
first. Medians over the rounds; every round is reported.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.stack import Stack
from domain.market_events import MarketEvent, PoolCreated, PriceTick, pool_state
from domain.orders.commands import ExecuteOrder
from domain.orders.events import OrderTriggered, OrderWaiting, TransactionSubmitted
from domain.orders.signatures import b58encode
from domain.orders.status import Trigger
from domain.orders.terms import LimitTerms, SniperTerms
from domain.tokens import SOL, USDC, Token
from domain.venues.raydium import RaydiumPool
from oee.settings import Settings
from producers.publisher import MarketPublisher
from infra.schema_registry import reading_codec, registered_codec
from schemas.writer_fence import Fence, Verdict

OVERRIDES = {"venue_latency_min_ms": 0, "venue_latency_max_ms": 0, "confirm_delay_min_ms": 0,
             "confirm_delay_max_ms": 0, "transient_failure_rate": 0.0,
             "best_price_interval_s": 0.0}


class Watch:
    """Follows the event store: who waits, and when each order triggered and submitted."""

    def __init__(self, settings: Settings) -> None:
        self._settings, self._codec = settings, reading_codec(settings)
        self.waiting: set[str] = set()
        self.at: dict[str, dict[str, datetime]] = defaultdict(dict)

    async def __aenter__(self) -> Watch:
        self._consumer = AIOKafkaConsumer(
            self._settings.topics.events, bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=5)
        await self._consumer.start()
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self) -> None:
        fences: dict[int, Fence] = {}
        async for record in self._consumer:
            # A worker's claim on a partition is not an event (schemas.writer_fence).
            fence = fences.setdefault(record.partition, Fence())
            if fence.judge(record.offset, record.headers) is not Verdict.EVENT:
                continue
            event = self._codec.decode_event(record.value or b"")
            if isinstance(event, OrderWaiting):
                self.waiting.add(event.order_id)
            elif isinstance(event, OrderTriggered | TransactionSubmitted):
                self.at[event.order_id].setdefault(type(event).__name__, event.occurred_at)

    async def until(self, done: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout_s}s")
            await asyncio.sleep(0.01)


def limit_order(limit: str) -> ExecuteOrder:
    return ExecuteOrder(
        command_id=str(uuid.uuid4()), order_id=str(uuid.uuid4()), issued_at=datetime.now(UTC),
        terms=LimitTerms(token_in=SOL.mint, token_out=USDC.mint,
                         token_in_symbol="SOL", token_out_symbol="USDC", token_in_decimals=9,
                         token_out_decimals=6, amount_in=10_000_000, slippage_bps=100,
                         limit_price=Decimal(limit)))


def sniper_order(token: Token) -> ExecuteOrder:
    return ExecuteOrder(
        command_id=str(uuid.uuid4()), order_id=str(uuid.uuid4()), issued_at=datetime.now(UTC),
        terms=SniperTerms(token_in=USDC.mint, token_out=token.mint,
                          token_in_symbol="USDC", token_out_symbol=token.symbol,
                          token_in_decimals=6, token_out_decimals=token.decimals,
                          amount_in=10_000_000, slippage_bps=300, trigger=Trigger.POOL_CREATED,
                          max_price=Decimal("0.01")))


def listing(token: Token) -> PoolCreated:
    pool = RaydiumPool.from_price(token, USDC, 10_000_000 * 10**6, Decimal("0.002"))
    return PoolCreated(event_id=f"listing-{token.symbol}", occurred_at=datetime.now(UTC),
                       venue="raydium", token_x=token, token_y=USDC, state=pool_state(pool),
                       liquidity_usd=Decimal(40_000))


async def produce(settings: Settings, commands: list[ExecuteOrder]) -> None:
    codec = registered_codec(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        sent = [await producer.send(settings.topics.commands, codec.encode_command(c),
                                    key=c.order_id.encode()) for c in commands]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def latencies(watch: Watch, ids: list[str], kind: str, since: datetime) -> list[float]:
    return [(watch.at[o][kind] - since).total_seconds() * 1000 for o in ids]


async def measure(settings: Settings, waiting: int, crossing: int, snipers: int,
                  rounds: int) -> dict[str, Any]:
    tokens = [Token(f"NEW{r}", b58encode(uuid.uuid4().bytes * 2), 6) for r in range(rounds)]
    groups = [[limit_order(f"{200 + 5 * r}") for _ in range(crossing)] for r in range(rounds)]
    sniping = [[sniper_order(tokens[r]) for _ in range(snipers)] for r in range(rounds)]
    idle = [limit_order(f"{260 + i % 100}") for i in range(waiting)]
    everything = [*idle, *(c for g in groups for c in g), *(c for g in sniping for c in g)]
    warm_up = limit_order("150")  # marketable: through every stage once before measuring
    async with Watch(settings) as watch, MarketPublisher.of(settings) as market:
        await produce(settings, [warm_up])
        await watch.until(lambda: "TransactionSubmitted" in watch.at[warm_up.order_id], 120,
                          "the warm-up order")
        started = time.monotonic()
        await produce(settings, everything)
        await watch.until(lambda: len(watch.waiting) >= len(everything), 600, "orders to wait")
        placed_s = time.monotonic() - started
        results = []
        for r in range(rounds):
            results.append(await one_round(market, watch, r, groups[r], sniping[r], tokens[r]))
    return {"waiting_orders": len(everything), "placed_and_waiting_s": round(placed_s, 1),
            "median": {k: statistics.median(x[k] for x in results) for k in results[0]},
            "rounds": results}


async def one_round(market: MarketPublisher, watch: Watch, r: int, group: list[ExecuteOrder],
                    sniping: list[ExecuteOrder], token: Token) -> dict[str, float]:
    ids, sniper_ids = [c.order_id for c in group], [c.order_id for c in sniping]
    tick: MarketEvent = PriceTick(event_id=f"tick-{r}", occurred_at=datetime.now(UTC),
                                  venue=None, base_mint=SOL.mint, quote_mint=USDC.mint,
                                  price=Decimal(f"{202.5 + 5 * r}"))
    await market.send([tick])
    await watch.until(lambda: all("TransactionSubmitted" in watch.at[o] for o in ids), 120,
                      f"round {r}: the crossed orders")
    listed = listing(token)
    await market.send([listed])
    await watch.until(lambda: all("TransactionSubmitted" in watch.at[o] for o in sniper_ids),
                      120, f"round {r}: the snipers")
    triggered = latencies(watch, ids, "OrderTriggered", tick.occurred_at)
    submitted = latencies(watch, ids, "TransactionSubmitted", tick.occurred_at)
    sniped = latencies(watch, sniper_ids, "TransactionSubmitted", listed.occurred_at)
    return {"crossed": len(ids), "snipers": len(sniper_ids),
            "tick_to_triggered_first_ms": round(min(triggered), 1),
            "tick_to_triggered_p50_ms": _pct(triggered, 50),
            "tick_to_triggered_p99_ms": _pct(triggered, 99),
            "tick_to_submitted_first_ms": round(min(submitted), 1),
            "tick_to_submitted_p50_ms": _pct(submitted, 50),
            "tick_to_submitted_p99_ms": _pct(submitted, 99),
            "listing_to_submitted_first_ms": round(min(sniped), 1),
            "listing_to_submitted_p50_ms": _pct(sniped, 50),
            "listing_to_submitted_p99_ms": _pct(sniped, 99)}


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))], 1)


def run(waiting: int, crossing: int, snipers: int, rounds: int) -> dict[str, Any]:
    with Stack(OVERRIDES, processes=("streams.worker", "api.server")) as stack:
        return asyncio.run(measure(stack.settings, waiting, crossing, snipers, rounds))
