"""Helpers of the conditional-order tests: placing orders over HTTP, scripting the market with
`producers.publisher.publish`, and reading what the event log says about an order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from domain.market_events import LiquidityChanged, MarketEvent, PoolCreated, PriceTick, pool_state
from domain.orders.events import Event, OrderTriggered, OrderWaiting, PriceObserved
from domain.orders.signatures import b58encode
from domain.pools import Pool
from domain.tokens import SOL, USDC, Token
from domain.venues.raydium import RaydiumPool
from oee.settings import Settings
from producers.publisher import publish
from tests.harness import EventLog

LIMIT = {"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5",
         "slippageBps": 100}


def new_token(symbol: str) -> Token:
    """A token no registry knows, with a fresh 32-byte mint (base58)."""
    return Token(symbol, b58encode(uuid.uuid4().bytes + uuid.uuid4().bytes), 6)


async def place(client: httpx.AsyncClient, body: dict[str, object]) -> str:
    response = await client.post("/api/orders/execute", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["orderId"])


async def tick(settings: Settings, price: str) -> PriceTick:
    """Every SOL/USDC pool now trades at `price` USDC per SOL."""
    event = PriceTick(event_id=f"tick-{uuid.uuid4().hex[:8]}", occurred_at=datetime.now(UTC),
                      venue=None, base_mint=SOL.mint, quote_mint=USDC.mint, price=Decimal(price))
    await publish(settings, [event])
    return event


def listed(token: Token, usd_per_token: str, reserve_tokens: int) -> Pool:
    return RaydiumPool.from_price(token, USDC, reserve_tokens * 10**token.decimals,
                                  Decimal(usd_per_token))


def created(pool: Pool, liquidity_usd: int) -> PoolCreated:
    return PoolCreated(event_id=f"listing-{uuid.uuid4().hex[:8]}", occurred_at=datetime.now(UTC),
                       venue=pool.venue, token_x=pool.token_x, token_y=pool.token_y,
                       state=pool_state(pool), liquidity_usd=Decimal(liquidity_usd))


def liquidity_changed(pool: Pool, previous_usd: int, now_usd: int) -> tuple[Pool, LiquidityChanged]:
    after = pool.scaled((now_usd - previous_usd) * 10_000 // previous_usd)
    event = LiquidityChanged(
        event_id=f"liquidity-{uuid.uuid4().hex[:8]}", occurred_at=datetime.now(UTC),
        venue=after.venue, token_x=after.token_x, token_y=after.token_y, state=pool_state(after),
        liquidity_usd=Decimal(now_usd), previous_liquidity_usd=Decimal(previous_usd))
    return after, event


async def market(settings: Settings, events: list[MarketEvent]) -> None:
    await publish(settings, events)


def of_type(log: EventLog, order_id: str, kind: type[Event]) -> list[Event]:
    return [event for event in log.by_order.get(order_id, []) if isinstance(event, kind)]


def triggers(log: EventLog, order_id: str) -> list[OrderTriggered]:
    return [e for e in log.by_order.get(order_id, []) if isinstance(e, OrderTriggered)]


def is_waiting(log: EventLog, order_id: str) -> bool:
    """Accepted, waiting, and nothing but best-price updates since."""
    events = log.by_order.get(order_id, [])
    kinds = [type(event) for event in events[1:]]
    return bool(kinds) and kinds[0] is OrderWaiting and set(kinds[1:]) <= {PriceObserved}


def observed_near(log: EventLog, order_id: str, price: str) -> bool:
    """Has the order seen a best price within 1% below `price` (the tick, net of fees)?"""
    top = Decimal(price)
    return any(isinstance(e, PriceObserved) and top * Decimal("0.99") < e.best_price <= top
               for e in log.by_order.get(order_id, []))
