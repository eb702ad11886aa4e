"""Schema v5 (issue 14 part 3): every event carries `prevHash` and `hash`, the per-order chain.

The canonical bytes an event's hash covers are what an auditor recomputes with any Avro
library: the record decoded with its writer's schema, both hashes set to null, encoded again,
without the wire header. These tests recompute them with fastavro and the raw .avsc alone."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.orders import EVENT_TYPES, OrderConfirmed, OrderStatus
from schemas.chain import GENESIS, link_hash
from schemas.codec import CONFLUENT_MAGIC, Codec
from tests.contract.avro_records import parsed, raw_schema, write
from tests.contract.strategies import messages

CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
CONFIRMED = OrderConfirmed(event_id="e-3", order_id="o-1", seq=3, occurred_at=T0,
                           correlation_id="c", causation_id="k", attempt=1,
                           signature="5" * 88, amount_out=277_400_000,
                           executed_price=Decimal("184.93"), slot=302)


# What the codec writes with (v5 brought the chain; every later version keeps it).
V5, _ = parsed(raw_schema("order_event"))


def auditors_canonical_bytes(record: bytes, header: int) -> bytes:
    """Recomputed from the raw v5 .avsc with plain fastavro, not with the codec. The decode
    keeps each union value's branch (return_record_name): payload records of one shape
    (e.g. CancelRejected and OrderCancelled) would otherwise be written as the first."""
    schema = V5
    decoded: dict[str, Any] = schemaless_reader(  # type: ignore[assignment]
        BytesIO(record[header:]), schema, None, return_record_name=True)
    out = BytesIO()
    schemaless_writer(out, schema, {**decoded, "prevHash": None, "hash": None})
    return out.getvalue()


def test_the_hash_fields_are_nullable_fixed_32_defaulting_to_null_and_last() -> None:
    fields = raw_schema("order_event")["fields"]
    prev, digest = fields[-2], fields[-1]
    assert (prev["name"], digest["name"]) == ("prevHash", "hash")
    assert prev["type"] == ["null", {"type": "fixed", "name": "Sha256", "size": 32}]
    assert digest["type"] == ["null", "oee.orders.Sha256"]
    assert prev["default"] is None and digest["default"] is None
    assert CODEC.event_version >= 5  # v5 added them; later versions keep them


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_chained_event_carries_sha256_of_prev_and_its_canonical_bytes(
    event_type: type[Any], data: st.DataObject
) -> None:
    event = data.draw(messages(event_type))
    status = data.draw(st.sampled_from(OrderStatus))
    prev = data.draw(st.sampled_from([GENESIS, hashlib.sha256(b"x").digest()]))

    record, digest = CODEC.encode_chained_event(event, status=status, prev_hash=prev)

    canonical = auditors_canonical_bytes(record, 2)
    assert canonical == CODEC.encode_event(event, status=status)[2:]  # = unchained body
    assert canonical == record[2:-66] + b"\x00\x00"  # the hashes are the last 66 bytes
    assert digest == hashlib.sha256(prev + canonical).digest() == link_hash(prev, canonical)
    envelope = CODEC.decode_envelope(record)
    assert (envelope.event, envelope.status) == (event, status)
    assert (envelope.prev_hash, envelope.hash) == (prev, digest)
    link = CODEC.chain_link(record)
    assert link is not None and (link.prev_hash, link.hash, link.canonical) == (
        prev, digest, canonical)


def test_the_wire_header_is_not_part_of_the_canonical_bytes() -> None:
    framed = Codec(ids={"order_event": {v: 100 + v for v in range(1, CODEC.event_version + 1)}})
    legacy, legacy_hash = CODEC.encode_chained_event(CONFIRMED, status=OrderStatus.CONFIRMED,
                                                     prev_hash=GENESIS)
    confluent, confluent_hash = framed.encode_chained_event(
        CONFIRMED, status=OrderStatus.CONFIRMED, prev_hash=GENESIS)
    assert confluent[0] == CONFLUENT_MAGIC and legacy[0] != CONFLUENT_MAGIC
    assert confluent[5:] == legacy[2:] and confluent_hash == legacy_hash


def test_an_unchained_v5_event_has_no_hashes_and_canonical_bytes_of_its_body() -> None:
    record = CODEC.encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)
    envelope = CODEC.decode_envelope(record)
    link = CODEC.chain_link(record)
    assert envelope.prev_hash is None and envelope.hash is None
    assert link is not None and not link.chained and link.canonical == record[2:]


def test_a_v4_event_reads_with_no_hashes_and_is_outside_the_chain() -> None:
    record = {"eventId": "e-1", "orderId": "o-1", "seq": 1, "type": "OrderCancelled",
              "occurredAt": T0, "correlationId": "c", "causationId": "c",
              "status": "cancelled", "schemaVersion": 4,
              "payload": ("oee.orders.OrderCancelled", {"reason": "user"})}
    written = write(raw_schema("order_event", 4), 4, record)

    envelope = CODEC.decode_envelope(written)
    assert envelope.event.seq == 1 and envelope.status is OrderStatus.CANCELLED
    assert (envelope.prev_hash, envelope.hash) == (None, None)
    assert CODEC.chain_link(written) is None
