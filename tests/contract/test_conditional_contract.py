"""Contract v3 (nested terms): v1 and v2 records (flat terms, built with the committed history
schemas) still read, as the typed terms of their order type; the v3 terms survive the wire;
the JSON view of the terms stays the flat one clients have always seen."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import (
    Event,
    ExecuteOrder,
    LimitTerms,
    MarketTerms,
    OrderAccepted,
    OrderStatus,
    PoolTriggerFired,
    SniperTerms,
    TimeInForce,
    Trigger,
)
from schemas.codec import Codec
from schemas.errors import UndecodableRecord
from tests.contract.avro_records import raw_schema, write

CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
EXPIRES = datetime(2025, 3, 2, 12, 0, 0, 123456, tzinfo=UTC)
V1_TERMS: dict[str, Any] = {
    "orderType": "market", "tokenIn": "in", "tokenOut": "out", "tokenInSymbol": "IN",
    "tokenOutSymbol": "OUT", "tokenInDecimals": 9, "tokenOutDecimals": 6,
    "amountIn": 10**9, "slippageBps": 50, "clientOrderId": "k-1",
}
V2_NONE: dict[str, Any] = {"limitPrice": None, "timeInForce": "GTC", "expiresAt": None,
                           "trigger": None, "minLiquidityUsd": None, "maxPrice": None}
# v6: the twap/dca terms, null for every other order type (the view shows every term).
V6_NONE: dict[str, Any] = {"intervalS": None, "minSlicePrice": None, "maxSlicePrice": None,
                           "slices": None, "amountPerSlice": None, "endAt": None}
COMMON: dict[str, Any] = dict(token_in="in", token_out="out", token_in_symbol="IN",
                              token_out_symbol="OUT", token_in_decimals=9, token_out_decimals=6,
                              amount_in=10**9, slippage_bps=50, client_order_id="k-1")
LIMIT = LimitTerms(**COMMON, limit_price=Decimal("185.000000000000001"),
                   time_in_force=TimeInForce.GTD, expires_at=EXPIRES)
SNIPER = SniperTerms(**COMMON, trigger=Trigger.LIQUIDITY, min_liquidity_usd=Decimal(50_000),
                     max_price=Decimal("0.0055"))
# v2 flat terms -> the typed terms they read as.
V2_CASES = [
    pytest.param({}, MarketTerms(**COMMON), id="market"),
    pytest.param({"orderType": "limit", "limitPrice": "185.000000000000001", "timeInForce": "GTD",
                  "expiresAt": EXPIRES}, LIMIT, id="gtd-limit"),
    pytest.param({"orderType": "sniper", "trigger": "liquidity", "minLiquidityUsd": "50000",
                  "maxPrice": "0.0055"}, SNIPER, id="sniper"),
]


def event_record(version: int, payload: dict[str, Any]) -> bytes:
    record = {
        "eventId": "e-1", "orderId": "o-1", "seq": 1, "type": "OrderAccepted",
        "occurredAt": T0, "correlationId": "c", "causationId": "c", "schemaVersion": version,
        "payload": ("oee.orders.OrderAccepted", payload),
    }
    return write(raw_schema("order_event", version), version, record)


def command_record(version: int, payload: dict[str, Any]) -> bytes:
    record = {
        "commandId": "k", "orderId": "o-1", "issuedAt": T0, "correlationId": None,
        "causationId": None, "schemaVersion": version,
        "payload": ("oee.orders.ExecuteOrder", payload),
    }
    return write(raw_schema("order_command", version), version, record)


def test_the_order_schemas_are_at_their_current_versions() -> None:
    # order_command v5 added the envelope's acceptBy (issue 10); order_event v5 the hash
    # chain's prevHash and hash (issue 14); v6 of both the twap/dca parents (issue 14 part 2).
    assert (CODEC.event_version, CODEC.command_version) == (6, 6)


def test_a_v1_order_accepted_reads_as_market_terms() -> None:
    event = CODEC.decode_event(event_record(1, V1_TERMS))

    assert isinstance(event, OrderAccepted)
    assert event.terms == MarketTerms(**COMMON)


def test_a_v1_execute_order_reads_as_market_terms() -> None:
    command = CODEC.decode_command(command_record(1, V1_TERMS))

    assert isinstance(command, ExecuteOrder)
    assert command.terms == MarketTerms(**COMMON)


@pytest.mark.parametrize(("flat", "terms"), V2_CASES)
def test_v2_records_read_as_the_typed_terms_of_their_order_type(
    flat: dict[str, Any], terms: Any
) -> None:
    payload = V1_TERMS | V2_NONE | flat
    event = CODEC.decode_event(event_record(2, payload))
    command = CODEC.decode_command(command_record(2, payload))

    assert isinstance(event, OrderAccepted) and isinstance(command, ExecuteOrder)
    assert event.terms == command.terms == terms


@pytest.mark.parametrize("flat", [{"orderType": "limit"}, {"orderType": "sniper"},
                                  {"orderType": "stop"}])
def test_a_v2_record_whose_terms_mean_nothing_in_v3_is_undecodable_not_a_crash(
    flat: dict[str, Any]
) -> None:
    with pytest.raises(UndecodableRecord):
        CODEC.decode_command(command_record(2, V1_TERMS | V2_NONE | flat))


@pytest.mark.parametrize(("flat", "terms"), V2_CASES)
def test_the_terms_survive_the_wire_exactly(flat: dict[str, Any], terms: Any) -> None:
    limit = ExecuteOrder(command_id="k", order_id="o", issued_at=T0, terms=terms)
    encoded = CODEC.encode_command(limit)
    assert encoded[1] == CODEC.command_version and CODEC.decode_command(encoded) == limit


def test_a_sniper_report_survives_the_wire_exactly() -> None:
    fired = PoolTriggerFired(
        command_id="k2", order_id="o", issued_at=T0, trigger=Trigger.LIQUIDITY,
        venue="raydium", liquidity_usd=Decimal("50000.01"), observed_price=Decimal("0.0054"),
        market_event_id="feed-1",
    )
    assert CODEC.decode_command(CODEC.encode_command(fired)) == fired


@pytest.mark.parametrize(("flat", "terms"), V2_CASES)
def test_the_json_view_of_the_terms_is_the_flat_v2_one(flat: dict[str, Any], terms: Any) -> None:
    accepted = OrderAccepted(event_id="e", order_id="o", seq=1, occurred_at=T0,
                             correlation_id="c", causation_id="c", terms=terms)
    expected = V1_TERMS | V2_NONE | V6_NONE | flat | {"amountIn": str(10**9), "owner": None,
                                                      "parentId": None}
    if "expiresAt" in flat:
        expected["expiresAt"] = EXPIRES.isoformat()
    assert CODEC.event_to_json(accepted) == expected


def test_an_audit_row_of_a_v1_order_accepted_reads_as_market_terms() -> None:
    from readmodel.event_json import EventReader

    json_v1 = V1_TERMS | {"amountIn": str(10**9)}
    event = EventReader().event("OrderAccepted", json_v1, event_id="e", order_id="o", seq=1,
                                occurred_at=T0)

    assert isinstance(event, OrderAccepted) and event.terms == MarketTerms(**COMMON)


def test_an_audit_row_with_a_term_its_order_type_does_not_take_is_refused() -> None:
    from readmodel.event_json import EventReader, UnreadablePayload

    row = V1_TERMS | V2_NONE | {"amountIn": str(10**9), "limitPrice": "190"}
    with pytest.raises(UnreadablePayload, match="takes no"):
        EventReader().event("OrderAccepted", row, event_id="e", order_id="o", seq=1,
                            occurred_at=T0)


def test_the_json_view_of_every_conditional_event_reads_back() -> None:
    from readmodel.event_json import EventReader
    from domain.orders import OrderExpired, OrderTriggered, OrderWaiting, PriceObserved

    meta: dict[str, Any] = dict(event_id="e", order_id="o", seq=2, occurred_at=T0,
                                correlation_id="", causation_id="")
    events: list[Event] = [
        OrderAccepted(**meta, terms=LIMIT),
        OrderAccepted(**meta, terms=SNIPER),
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


# --- the status in the envelope (v3), derived once for v1/v2 records ---------------------------


def v2_event(event: Event) -> bytes:
    """`event` as a v2 writer wrote it: no status in the envelope, terms flat."""
    from tests.contract.avro_records import flat_terms, parsed, project, read

    current = raw_schema("order_event")
    record = read(current, CODEC.encode_event(event, status=OrderStatus.PENDING))
    old = raw_schema("order_event", 2)
    old_record = project(flat_terms(record, 2), *parsed(old)) | {"schemaVersion": 2}
    return write(old, 2, old_record)


def test_a_v3_envelope_carries_the_writers_status() -> None:
    from domain.orders import CancelRejected

    rejected = CancelRejected(event_id="e", order_id="o", seq=5, occurred_at=T0,
                              correlation_id="c", causation_id="c", reason="late")
    envelope = CODEC.decode_envelope(CODEC.encode_event(rejected, status=OrderStatus.SUBMITTED))
    assert (envelope.event, envelope.status) == (rejected, OrderStatus.SUBMITTED)


def test_a_v2_event_reads_with_the_status_its_type_implies_or_none() -> None:
    from bench.order_histories import HistoryMaker
    from domain.orders import CancelRejected, ExecutionAttemptFailed, evolve, initial_state
    from domain.orders.status import AttemptStage

    unknown: set[str] = set()
    for history in HistoryMaker(seed=11).orders(60):
        state = initial_state(history[0].order_id)
        for event in history:
            state = evolve(state, event)
            envelope = CODEC.decode_envelope(v2_event(event))
            assert envelope.event == event
            if envelope.status is None:
                unknown.add(type(event).__name__)
                ambiguous = isinstance(event, CancelRejected) or (
                    isinstance(event, ExecutionAttemptFailed)
                    and event.stage is AttemptStage.CONFIRM)
                assert ambiguous, event
            else:
                assert envelope.status is state.status, event
    assert unknown <= {"CancelRejected", "ExecutionAttemptFailed"}
