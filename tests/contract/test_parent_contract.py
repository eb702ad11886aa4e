"""Schema v6 of order_command and order_event (issue 14 part 2): twap and dca terms in the
terms unions, a slice's nullable `parentId`, the parents' commands and events. A v5 record
reads as an order without a parent; the new messages survive the wire and the audit log's
JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.orders.commands import ChildReport, ExecuteOrder, SliceDue
from domain.orders.events import (
    ChildProgressed,
    OrderAccepted,
    ParentAccepted,
    SliceReleased,
    SliceSkipped,
)
from domain.orders.status import OrderStatus
from domain.orders.terms import DcaTerms, MarketTerms, TwapTerms
from readmodel.event_json import EventReader
from schemas.codec import Codec
from tests.contract.avro_records import raw_schema, write

CODEC = Codec.load()
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
COMMON: dict[str, Any] = dict(token_in="in", token_out="out", token_in_symbol="IN",
                              token_out_symbol="OUT", token_in_decimals=9,
                              token_out_decimals=6, slippage_bps=50)
V5_TERMS: dict[str, Any] = {
    "tokenIn": "in", "tokenOut": "out", "tokenInSymbol": "IN", "tokenOutSymbol": "OUT",
    "tokenInDecimals": 9, "tokenOutDecimals": 6, "amountIn": 10**9, "slippageBps": 50,
    "clientOrderId": None,
}
TWAP = TwapTerms(**COMMON, amount_in=3 * 10**9, slices=3, interval_s=60,
                 min_slice_price=Decimal("150.25"))
DCA = DcaTerms(**COMMON, amount_in=10**9, amount_per_slice=3 * 10**8, interval_s=3600,
               end_at=T0)
META: dict[str, Any] = dict(event_id="e", order_id="p", seq=1, occurred_at=T0,
                            correlation_id="c", causation_id="c")


def _branch(schema_name: str, record: str) -> dict[str, Any]:
    payload = [f for f in raw_schema(schema_name)["fields"] if f["name"] == "payload"][0]
    (found,) = [b for b in payload["type"] if b["name"] == record]
    return found


@pytest.mark.parametrize(("schema", "record"), [("order_command", "ExecuteOrder"),
                                                ("order_event", "OrderAccepted")])
def test_parent_id_is_a_nullable_string_defaulting_to_null(schema: str, record: str) -> None:
    (parent,) = [f for f in _branch(schema, record)["fields"] if f["name"] == "parentId"]
    assert parent["type"] == ["null", "string"] and parent["default"] is None


def test_a_v5_execute_order_and_order_accepted_read_without_a_parent() -> None:
    command_record = {"commandId": "k", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
                      "causationId": None, "schemaVersion": 5, "acceptBy": None,
                      "payload": ("oee.orders.ExecuteOrder",
                                  {"terms": ("oee.orders.MarketTerms", V5_TERMS),
                                   "owner": "key"})}
    command = CODEC.decode_command(write(raw_schema("order_command", 5), 5, command_record))
    assert isinstance(command, ExecuteOrder) and command.parent_id is None
    event_record = {"eventId": "e-1", "orderId": "o-1", "seq": 1, "type": "OrderAccepted",
                    "occurredAt": T0, "correlationId": "c", "causationId": "c",
                    "status": "pending", "schemaVersion": 5, "prevHash": None, "hash": None,
                    "payload": ("oee.orders.OrderAccepted",
                                {"terms": ("oee.orders.MarketTerms", V5_TERMS),
                                 "owner": None})}
    event = CODEC.decode_event(write(raw_schema("order_event", 5), 5, event_record))
    assert isinstance(event, OrderAccepted) and event.parent_id is None


@pytest.mark.parametrize("terms", [TWAP, DCA], ids=["twap", "dca"])
def test_parent_terms_and_a_slice_survive_the_wire(terms: Any) -> None:
    parent = ExecuteOrder(command_id="k", order_id="p", issued_at=T0, terms=terms, owner="key")
    child = ExecuteOrder(command_id="k2", order_id="c", issued_at=T0,
                         terms=MarketTerms(**COMMON, amount_in=10**9), parent_id="p")
    for command in (parent, child):
        assert CODEC.decode_command(CODEC.encode_command(command)) == command
    accepted = ParentAccepted(**META, terms=terms, slice_amounts=(10**9, 10**9, 10**9), owner="key")
    assert CODEC.decode_event(CODEC.encode_event(accepted, status=OrderStatus.WAITING)) == \
        accepted


def test_the_parents_commands_and_events_survive_the_wire_and_the_audit_json() -> None:
    due = SliceDue(command_id="d", order_id="p", issued_at=T0, slice_index=2, token_in="in",
                   token_out="out", amount_in=5, needs_price=True,
                   observed_price=Decimal("151.5"))
    report = ChildReport(command_id="r", order_id="p", issued_at=T0, child_id="c",
                         child_seq=6, child_status=OrderStatus.CONFIRMED, amount_out=7)
    for command in (due, report):
        assert CODEC.decode_command(CODEC.encode_command(command)) == command
    reader = EventReader()
    stamp: dict[str, Any] = dict(event_id="e", order_id="p", seq=1, occurred_at=T0)
    events = [
        ParentAccepted(**stamp, correlation_id="", causation_id="", terms=DCA, slice_amounts=(3, 3),
                       owner=None),
        SliceReleased(**stamp, correlation_id="", causation_id="", slice_index=0,
                      child_id="c", amount_in=3, observed_price=None),
        SliceSkipped(**stamp, correlation_id="", causation_id="", slice_index=1, amount_in=3,
                     reason="price_below_min", observed_price=Decimal("1.5")),
        ChildProgressed(**stamp, correlation_id="", causation_id="", child_id="c",
                        child_seq=3, child_status=OrderStatus.SUBMITTED),
    ]
    for event in events:
        assert CODEC.decode_event(CODEC.encode_event(event, status=OrderStatus.WAITING)) == event
        assert reader.event(type(event).__name__, CODEC.event_to_json(event), **stamp) == event
    payload = CODEC.event_to_json(events[0])
    assert (payload["orderType"], payload["amountPerSlice"], payload["intervalS"]) == (
        "dca", str(3 * 10**8), 3600)
