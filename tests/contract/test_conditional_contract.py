"""Contract v2 (conditional orders): v1 records still read, as market orders; the v2 fields
and types survive the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.orders import (
    ExecuteOrder,
    OrderAccepted,
    OrderType,
    PoolTriggerFired,
    TimeInForce,
    Trigger,
)
from schemas.codec import Codec
from tests.contract.avro_records import raw_schema, write

CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
V1_TERMS: dict[str, Any] = {
    "orderType": "market", "tokenIn": "in", "tokenOut": "out", "tokenInSymbol": "IN",
    "tokenOutSymbol": "OUT", "tokenInDecimals": 9, "tokenOutDecimals": 6,
    "amountIn": 10**9, "slippageBps": 50, "clientOrderId": None,
}


def test_both_order_schemas_are_at_version_2() -> None:
    assert (CODEC.event_version, CODEC.command_version) == (2, 2)


def test_a_v1_order_accepted_reads_as_a_good_till_cancelled_market_order() -> None:
    record = {
        "eventId": "e-1", "orderId": "o-1", "seq": 1, "type": "OrderAccepted",
        "occurredAt": T0, "correlationId": "c", "causationId": "c", "schemaVersion": 1,
        "payload": ("oee.orders.OrderAccepted", V1_TERMS),
    }
    event = CODEC.decode_event(write(raw_schema("order_event", 1), 1, record))

    assert isinstance(event, OrderAccepted)
    assert (event.order_type, event.amount_in, event.client_order_id) == (
        OrderType.MARKET, 10**9, None)
    assert (event.limit_price, event.time_in_force, event.expires_at, event.trigger,
            event.min_liquidity_usd, event.max_price) == (
        None, TimeInForce.GTC, None, None, None, None)


def test_a_v1_execute_order_reads_with_the_market_defaults() -> None:
    record = {
        "commandId": "k", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
        "causationId": None, "schemaVersion": 1, "payload": ("oee.orders.ExecuteOrder", V1_TERMS),
    }
    command = CODEC.decode_command(write(raw_schema("order_command", 1), 1, record))

    assert isinstance(command, ExecuteOrder)
    assert (command.limit_price, command.time_in_force, command.trigger) == (
        None, TimeInForce.GTC, None)


def test_a_gtd_limit_and_a_sniper_report_survive_the_wire_exactly() -> None:
    limit = ExecuteOrder(
        command_id="k", order_id="o", issued_at=T0, order_type=OrderType.LIMIT, token_in="in",
        token_out="out", token_in_symbol="IN", token_out_symbol="OUT", token_in_decimals=9,
        token_out_decimals=6, amount_in=10**9, slippage_bps=50,
        limit_price=Decimal("185.000000000000001"), time_in_force=TimeInForce.GTD,
        expires_at=datetime(2025, 3, 2, 12, 0, 0, 123456, tzinfo=UTC),
    )
    fired = PoolTriggerFired(
        command_id="k2", order_id="o", issued_at=T0, trigger=Trigger.LIQUIDITY,
        venue="raydium", liquidity_usd=Decimal("50000.01"), observed_price=Decimal("0.0054"),
        market_event_id="feed-1",
    )
    for command in (limit, fired):
        encoded = CODEC.encode_command(command)
        assert encoded[1] == 2 and CODEC.decode_command(encoded) == command


def test_an_audit_row_of_a_v1_order_accepted_reads_with_the_v2_defaults() -> None:
    from readmodel.event_json import EventReader

    json_v1 = {key: value for key, value in V1_TERMS.items()} | {"amountIn": str(10**9)}
    event = EventReader().event("OrderAccepted", json_v1, event_id="e", order_id="o", seq=1,
                                occurred_at=T0)

    assert isinstance(event, OrderAccepted)
    assert (event.time_in_force, event.limit_price, event.trigger) == (TimeInForce.GTC, None, None)


def test_the_json_view_of_every_v2_event_reads_back() -> None:
    from readmodel.event_json import EventReader
    from domain.orders import OrderExpired, OrderTriggered, OrderWaiting, PriceObserved

    meta: dict[str, Any] = dict(event_id="e", order_id="o", seq=2, occurred_at=T0,
                                correlation_id="", causation_id="")
    events = [
        OrderWaiting(**meta, trigger=Trigger.PRICE),
        PriceObserved(**meta, best_price=Decimal("185.25")),
        OrderTriggered(**meta, trigger=Trigger.LIQUIDITY, observed_price=Decimal("0.0054"),
                       venue="raydium", liquidity_usd=Decimal("60000"), market_event_id="m"),
        OrderExpired(**meta, expires_at=T0),
    ]
    reader = EventReader()
    for event in events:
        back = reader.event(type(event).__name__, CODEC.event_to_json(event), event_id="e",
                            order_id="o", seq=2, occurred_at=T0)
        assert back == event
