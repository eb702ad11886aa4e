"""Schema v4 (issue #11): `ExecuteOrder` and `OrderAccepted` carry the order's owner, the id of
the API key that placed it. Nullable with a null default, so every v1-v3 record reads as an
owner-less order, and the owner survives the wire and the audit log's JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.orders import ExecuteOrder, OrderAccepted, OrderStatus
from domain.orders.terms import MarketTerms
from readmodel.event_json import EventReader
from schemas.codec import Codec
from tests.contract.avro_records import raw_schema, write

CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
TERMS = MarketTerms(token_in="in", token_out="out", token_in_symbol="IN", token_out_symbol="OUT",
                    token_in_decimals=9, token_out_decimals=6, amount_in=10**9,
                    slippage_bps=50, client_order_id="k-1")
V3_TERMS: dict[str, Any] = {
    "tokenIn": "in", "tokenOut": "out", "tokenInSymbol": "IN", "tokenOutSymbol": "OUT",
    "tokenInDecimals": 9, "tokenOutDecimals": 6, "amountIn": 10**9, "slippageBps": 50,
    "clientOrderId": "k-1",
}


def _branch(schema_name: str, record: str) -> dict[str, Any]:
    payload = [f for f in raw_schema(schema_name)["fields"] if f["name"] == "payload"][0]
    (found,) = [b for b in payload["type"] if b["name"] == record]
    return found


@pytest.mark.parametrize(("schema", "record"), [("order_command", "ExecuteOrder"),
                                                ("order_event", "OrderAccepted")])
def test_owner_is_a_nullable_string_defaulting_to_null(schema: str, record: str) -> None:
    (owner,) = [f for f in _branch(schema, record)["fields"] if f["name"] == "owner"]
    assert owner["type"] == ["null", "string"] and owner["default"] is None


def test_a_v3_execute_order_reads_with_no_owner() -> None:
    record = {"commandId": "k", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
              "causationId": None, "schemaVersion": 3,
              "payload": ("oee.orders.ExecuteOrder",
                          {"terms": ("oee.orders.MarketTerms", V3_TERMS)})}
    command = CODEC.decode_command(write(raw_schema("order_command", 3), 3, record))

    assert isinstance(command, ExecuteOrder)
    assert command.owner is None and command.terms == TERMS


def test_a_v3_order_accepted_reads_with_no_owner() -> None:
    record = {"eventId": "e-1", "orderId": "o-1", "seq": 1, "type": "OrderAccepted",
              "occurredAt": T0, "correlationId": "c", "causationId": "c", "status": "pending",
              "schemaVersion": 3,
              "payload": ("oee.orders.OrderAccepted",
                          {"terms": ("oee.orders.MarketTerms", V3_TERMS)})}
    event = CODEC.decode_event(write(raw_schema("order_event", 3), 3, record))

    assert isinstance(event, OrderAccepted)
    assert event.owner is None and event.terms == TERMS


@pytest.mark.parametrize("owner", ["0123456789abcdef", None])
def test_the_owner_survives_the_wire(owner: str | None) -> None:
    command = ExecuteOrder(command_id="k", order_id="o", issued_at=T0, terms=TERMS, owner=owner)
    accepted = OrderAccepted(event_id="e", order_id="o", seq=1, occurred_at=T0,
                             correlation_id="c", causation_id="c", terms=TERMS, owner=owner)

    assert CODEC.decode_command(CODEC.encode_command(command)) == command
    encoded = CODEC.encode_event(accepted, status=OrderStatus.PENDING)
    assert encoded[1] == CODEC.event_version and CODEC.decode_event(encoded) == accepted


def test_the_owner_survives_the_audit_log_json_and_an_older_row_has_none() -> None:
    accepted = OrderAccepted(event_id="e", order_id="o", seq=1, occurred_at=T0,
                             correlation_id="", causation_id="", terms=TERMS,
                             owner="0123456789abcdef")
    payload = CODEC.event_to_json(accepted)
    reader = EventReader()
    stamp: dict[str, Any] = dict(event_id="e", order_id="o", seq=1, occurred_at=T0)

    assert reader.event("OrderAccepted", payload, **stamp) == accepted
    older = {key: value for key, value in payload.items() if key != "owner"}
    assert reader.event("OrderAccepted", older, **stamp) == OrderAccepted(
        **stamp, correlation_id="", causation_id="", terms=TERMS)
