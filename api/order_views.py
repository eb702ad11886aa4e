"""The public shape of an order as the read model knows it, built from an `orders` row.

Consumes `orders` rows (column -> value, as psycopg returns them; numeric amounts come back
as Decimal) and `order_events` rows; produces the camelCase models the query endpoints
answer with. Every amount is given twice, as an exact human decimal string and as integer
base units in a string (`Amount`, the same shape as the quote endpoint's), never as a JSON
number: base units exceed 2**53.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from api.shapes import Amount, PublicModel, TokenInfo
from domain.orders.status import OrderStatus
from domain.tokens import Token
from readmodel.rows import STATUS_COLUMNS


class OrderView(PublicModel):
    order_id: str
    status: str
    order_type: str
    seq: int  # the last event applied
    token_in: TokenInfo
    token_out: TokenInfo
    amount_in: Amount
    slippage_bps: int
    client_order_id: str | None
    venue: str | None  # raydium | meteora | split, once routed
    expected_amount_out: Amount | None  # what the chosen route quoted
    min_amount_out: Amount | None  # the slippage floor of the current attempt
    amount_out: Amount | None  # what the swap yielded, once confirmed
    executed_price: str | None  # tokenOut per 1 tokenIn, human units
    signature: str | None
    attempts: int
    failure_code: str | None
    reason: str | None  # why it failed, or the reason given to cancel it
    routing: dict[str, Any] | None  # the routing decision: every quote and why the winner won
    created_at: datetime
    updated_at: datetime
    status_times: dict[str, datetime | None]  # when the order last entered each status
    # The conditional terms, null for a market order; prices are exact decimal strings,
    # tokenOut per 1 tokenIn in human units (maxPrice: tokenIn paid per 1 tokenOut).
    limit_price: str | None  # limit: execute once the net price reaches this
    time_in_force: str | None  # GTC | GTD
    expires_at: datetime | None  # GTD: expires if not executing by then
    trigger: str | None  # sniper: pool_created | liquidity
    min_liquidity_usd: str | None  # sniper: the pool liquidity waited for
    max_price: str | None  # sniper: the most paid
    best_price: str | None  # the latest net executable price seen while waiting
    best_price_at: datetime | None
    triggered_price: str | None  # what the order's size fetched when it fired
    as_of: datetime | None = None  # set on `?asOf=` answers: the state at that time
    # twap/dca: a slice's parent; a parent's schedule terms and progress (slices released,
    # skipped, remaining; amounts in base-unit strings; averagePrice; each child's status).
    parent_id: str | None = None
    progress: dict[str, Any] | None = None


class OrderPage(PublicModel):
    orders: list[OrderView]
    next_cursor: str | None  # pass as `cursor` for the next page; null on the last page


class AuditEvent(PublicModel):
    event_id: str
    order_id: str
    seq: int
    type: str  # the event class
    status: str  # the order's status after this event
    timestamp: datetime  # when it occurred
    data: dict[str, Any]  # the payload, as on the WebSocket
    topic: str  # where the event is in Kafka: the proof of where it came from
    partition: int
    offset: int


class ChainStatus(PublicModel):
    """`?verify=true`: the order's hash chain recomputed from Kafka (schemas.chain)."""

    verified: bool
    events: int
    unchained: int  # events written before the chain existed (no hashes)
    head: str | None  # hex of the latest hash; None if broken or never chained
    broken_at: dict[str, Any] | None  # orderId, seq, topic, partition, offset, reason


class AuditTrail(PublicModel):
    order_id: str
    events: list[AuditEvent]
    chain: ChainStatus | None = None


def order_view(row: Mapping[str, Any], as_of: datetime | None = None) -> OrderView:
    """The view of one `orders` row (or of a folded state's row, with `as_of`)."""
    token_in = Token(row["token_in_symbol"], row["token_in"], row["token_in_decimals"])
    token_out = Token(row["token_out_symbol"], row["token_out"], row["token_out_decimals"])
    price = row["executed_price"]
    return OrderView(
        order_id=row["order_id"],
        status=row["status"],
        order_type=row["order_type"],
        seq=row["seq"],
        token_in=TokenInfo.of(token_in),
        token_out=TokenInfo.of(token_out),
        amount_in=Amount.of(row["amount_in"], token_in),
        slippage_bps=row["slippage_bps"],
        client_order_id=row["client_order_id"],
        venue=row["venue"],
        expected_amount_out=_amount_or_none(row["expected_amount_out"], token_out),
        min_amount_out=_amount_or_none(row["min_amount_out"], token_out),
        amount_out=_amount_or_none(row["amount_out"], token_out),
        executed_price=_decimal_or_none(price),
        signature=row["signature"],
        attempts=row["attempts"],
        failure_code=row["failure_code"],
        reason=row["failure_reason"],
        routing=_json(row["routing"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status_times={status.value: row[column] for status, column in STATUS_COLUMNS.items()},
        limit_price=_decimal_or_none(row["limit_price"]),
        time_in_force=row["time_in_force"],
        expires_at=row["expires_at"],
        trigger=row["trigger"],
        min_liquidity_usd=_decimal_or_none(row["min_liquidity_usd"]),
        max_price=_decimal_or_none(row["max_price"]),
        best_price=_decimal_or_none(row["best_price"]),
        best_price_at=row["best_price_at"],
        triggered_price=_decimal_or_none(row["triggered_price"]),
        as_of=as_of,
        parent_id=row.get("parent_id"),
        progress=_json(row.get("progress")),
    )


def audit_event(row: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        event_id=row["event_id"],
        order_id=row["order_id"],
        seq=row["seq"],
        type=row["type"],
        status=OrderStatus(row["status"]).value,
        timestamp=row["occurred_at"],
        data=_json(row["payload"]) or {},
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
    )


def _json(value: Any) -> Any:
    """jsonb arrives parsed from PostgreSQL; a row built in memory carries JSON text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _decimal_or_none(value: Decimal | str | None) -> str | None:
    """An exact decimal string ("101.25", never "1.0125E+2"), or None."""
    return None if value is None else format(Decimal(value), "f")


def _amount_or_none(base_units: int | Decimal | None, token: Token) -> Amount | None:
    return None if base_units is None else Amount.of(base_units, token)
