"""Schema v5 of order_command (issue 10): every command's envelope may carry `acceptBy`, the
instant by which the broker must have appended its record for it to count. Nullable with a
null default, timestamp-millis: v1-v4 records read as commands without a deadline, and the
record's append time (`appended_at`) is never part of the wire."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader

from domain.orders import ExecuteOrder
from domain.orders.commands import CancelOrder
from domain.orders.terms import MarketTerms
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


def test_accept_by_is_a_nullable_millisecond_timestamp_of_the_envelope() -> None:
    (field,) = [f for f in raw_schema("order_command")["fields"] if f["name"] == "acceptBy"]
    assert field["type"] == ["null", {"type": "long", "logicalType": "timestamp-millis"}]
    assert field["default"] is None
    assert CODEC.command_version >= 5  # v5 added it; later versions keep it


@pytest.mark.parametrize("version", [3, 4])
def test_an_older_execute_order_reads_without_a_deadline(version: int) -> None:
    payload: dict[str, Any] = {"terms": ("oee.orders.MarketTerms", V3_TERMS)}
    if version == 4:
        payload["owner"] = "0123456789abcdef"
    record = {"commandId": "k", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
              "causationId": None, "schemaVersion": version,
              "payload": ("oee.orders.ExecuteOrder", payload)}
    command = CODEC.decode_command(write(raw_schema("order_command", version), version, record))

    assert isinstance(command, ExecuteOrder)
    assert command.accept_by is None and command.appended_at is None
    assert command.terms == TERMS


def test_an_older_cancel_reads_without_a_deadline() -> None:
    record = {"commandId": "c", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
              "causationId": None, "schemaVersion": 4,
              "payload": ("oee.orders.CancelOrder", {"reason": "r"})}
    command = CODEC.decode_command(write(raw_schema("order_command", 4), 4, record))
    assert command == CancelOrder(command_id="c", order_id="o-1", issued_at=T0, reason="r")


@pytest.mark.parametrize("accept_by", [T0 + timedelta(seconds=3, milliseconds=1), None])
def test_the_deadline_survives_the_wire_and_the_append_time_stays_behind(
    accept_by: datetime | None,
) -> None:
    command = ExecuteOrder(command_id="k", order_id="o", issued_at=T0, terms=TERMS,
                           accept_by=accept_by)
    consumed = replace(command, appended_at=T0 + timedelta(seconds=1))

    encoded = CODEC.encode_command(consumed)
    assert encoded[1] == CODEC.command_version
    assert CODEC.decode_command(encoded) == command  # appended_at is the reader's to fill


def test_a_v5_record_resolves_for_a_v4_reader() -> None:
    """Forward: a consumer still on v4 (a worker not yet upgraded) skips acceptBy (the record
    is written by today's codec, with today's schema)."""
    command = CancelOrder(command_id="c", order_id="o", issued_at=T0, accept_by=T0)
    data = CODEC.encode_command(command)
    record = schemaless_reader(BytesIO(data[2:]), parse_schema(raw_schema("order_command")),
                               parse_schema(raw_schema("order_command", 4)))
    assert isinstance(record, dict) and "acceptBy" not in record
    assert record["payload"] == {"reason": None} and record["commandId"] == "c"
