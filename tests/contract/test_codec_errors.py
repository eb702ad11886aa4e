"""What the codec does with bytes it cannot read and messages it cannot write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.orders import BaseEvent, CancelOrder, OrderConfirmed, OrderStatus, RoutingStarted
from schemas.codec import (
    MAGIC,
    Codec,
    CodecError,
    UndecodableRecord,
    UnencodableMessage,
    UnknownSchemaVersion,
)
from tests.contract.avro_records import raw_schema, write

CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
META: dict[str, Any] = dict(
    event_id="e-1", order_id="o-1", seq=1, occurred_at=T0, correlation_id="c", causation_id="k"
)
CONFIRMED = OrderConfirmed(
    **META, attempt=1, signature="5" * 88, amount_out=277_400_000,
    executed_price=Decimal("184.93"), slot=302,
)
VALID = CODEC.encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)


def envelope(name: str, payload: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A record of the current schema (written with its version in the header)."""
    return {
        "eventId": "e-1", "orderId": "o-1", "seq": 1, "type": name, "occurredAt": T0,
        "correlationId": "c", "causationId": "k", "status": None,
        "schemaVersion": CODEC.event_version, "payload": (f"oee.orders.{name}", payload),
    } | overrides


def test_an_unknown_schema_version_names_the_version_and_the_known_ones() -> None:
    known = tuple(range(1, CODEC.event_version + 1))
    listed = ", ".join(f"v{version}" for version in known)
    with pytest.raises(UnknownSchemaVersion, match=rf"v7 \(known: {listed}\)") as caught:
        CODEC.decode_event(bytes((MAGIC, 7)) + VALID[2:])
    assert (caught.value.version, caught.value.known) == (7, known)
    assert isinstance(caught.value, CodecError)


@pytest.mark.parametrize("data", [b"", b"\x0e", b"\x00\x01", b"\x00\x00\x00\x01",
                                  b"\x01\x01" + VALID[2:], b"{\"json\": 1}"])
def test_bytes_without_the_header_are_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodableRecord):
        CODEC.decode_event(data)


def test_every_truncation_of_a_record_is_undecodable() -> None:
    for length in range(2, len(VALID)):
        with pytest.raises(UndecodableRecord):
            CODEC.decode_event(VALID[:length])


def test_trailing_bytes_after_a_record_are_undecodable() -> None:
    with pytest.raises(UndecodableRecord, match="trailing"):
        CODEC.decode_event(VALID + b"\x00")


@given(st.binary(max_size=200))
def test_garbage_after_a_valid_header_is_undecodable_or_a_valid_event(garbage: bytes) -> None:
    try:
        event = CODEC.decode_event(bytes((MAGIC, 1)) + garbage)
    except UndecodableRecord:
        return
    assert isinstance(event, BaseEvent)


@given(st.binary(max_size=200))
def test_garbage_commands_are_undecodable_too(garbage: bytes) -> None:
    try:
        CODEC.decode_command(bytes((MAGIC, 1)) + garbage)
    except UndecodableRecord:
        pass


def test_a_value_the_domain_rejects_is_undecodable() -> None:
    schema = raw_schema("order_event")
    bad_stage = envelope("OrderRedriven", {"stage": "sleeping", "stalledSeq": 3, "attempt": 1})
    with pytest.raises(UndecodableRecord, match="sleeping"):
        CODEC.decode_event(write(schema, CODEC.event_version, bad_stage))
    payload = {"attempt": 1, "signature": "s", "amountOut": 1, "executedPrice": "1,5", "slot": 2}
    with pytest.raises(UndecodableRecord):
        CODEC.decode_event(write(schema, CODEC.event_version, envelope("OrderConfirmed", payload)))


def test_a_type_field_that_contradicts_the_payload_is_undecodable() -> None:
    record = envelope("RoutingStarted", {"attempt": 1}, type="OrderConfirmed")
    with pytest.raises(UndecodableRecord, match="OrderConfirmed"):
        CODEC.decode_event(write(raw_schema("order_event"), CODEC.event_version, record))


def test_an_amount_beyond_a_long_is_unencodable() -> None:
    too_big = OrderConfirmed(
        **META, attempt=1, signature="s", amount_out=2**63, executed_price=Decimal(1), slot=1
    )
    with pytest.raises(UnencodableMessage):
        CODEC.encode_event(too_big, status=OrderStatus.CONFIRMED)


def test_a_command_is_not_an_event_and_an_event_not_a_command() -> None:
    cancel = CancelOrder(command_id="c-1", order_id="o-1", issued_at=T0)
    with pytest.raises(UnencodableMessage, match="CancelOrder is not in order_event"):
        CODEC.encode_event(cancel, status=OrderStatus.CANCELLED)  # type: ignore[arg-type]
    with pytest.raises(UnencodableMessage, match="RoutingStarted is not in order_command"):
        CODEC.encode_command(RoutingStarted(**META, attempt=1))  # type: ignore[arg-type]


def test_a_v2_record_of_a_stage_the_domain_rejects_is_undecodable_not_a_crash() -> None:
    record = envelope("OrderRedriven", {"stage": "sleeping", "stalledSeq": 3, "attempt": 1},
                      schemaVersion=2)
    del record["status"]
    with pytest.raises(UndecodableRecord, match="sleeping"):
        CODEC.decode_event(write(raw_schema("order_event", 2), 2, record))


def test_a_status_the_domain_does_not_know_is_undecodable() -> None:
    record = envelope("RoutingStarted", {"attempt": 1}, status="sleeping")
    with pytest.raises(UndecodableRecord, match="sleeping"):
        CODEC.decode_event(write(raw_schema("order_event"), CODEC.event_version, record))
