"""Every event and command survives the wire: Python -> Avro bytes -> Python, unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.orders import (
    COMMAND_TYPES,
    EVENT_TYPES,
    OrderConfirmed,
    OrderStatus,
    RetryScheduled,
    RouteSelected,
)
from domain.quotes import RouteLeg, RoutingDecision, VenueQuote
from domain.work import Work
from schemas.codec import MAGIC, Codec, EventEnvelope, event_type_name
from tests.contract.strategies import messages

CODEC = Codec.load()
WORK_TYPES: tuple[type[Any], ...] = get_args(Work)
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
META: dict[str, Any] = dict(
    event_id="e-3", order_id="o-1", seq=3, occurred_at=T0, correlation_id="c", causation_id="k"
)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_event_type_round_trips(event_type: type[Any], data: st.DataObject) -> None:
    event = data.draw(messages(event_type))
    status = data.draw(st.sampled_from(OrderStatus))
    encoded = CODEC.encode_event(event, status=status)
    assert encoded[:2] == bytes((MAGIC, CODEC.event_version))
    assert CODEC.decode_envelope(encoded) == EventEnvelope(event, status)
    assert CODEC.decode_event(encoded) == event


@pytest.mark.parametrize("command_type", COMMAND_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_command_type_round_trips(command_type: type[Any], data: st.DataObject) -> None:
    command = data.draw(messages(command_type))
    encoded = CODEC.encode_command(command)
    assert encoded[:2] == bytes((MAGIC, CODEC.command_version))
    assert CODEC.decode_command(encoded) == command


@pytest.mark.parametrize("work_type", WORK_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_work_item_round_trips(work_type: type[Any], data: st.DataObject) -> None:
    work = data.draw(messages(work_type))
    encoded = CODEC.encode_work(work)
    assert encoded[:2] == bytes((MAGIC, CODEC.work_version))
    assert CODEC.decode_work(encoded) == work


def test_the_largest_amounts_of_the_wire_round_trip() -> None:
    event = OrderConfirmed(
        **META, attempt=2**31 - 1, signature="s", amount_out=2**63 - 1,
        executed_price=Decimal("1E-30"), slot=2**63 - 1,
    )
    assert CODEC.decode_event(CODEC.encode_event(event, status=OrderStatus.CONFIRMED)) == event


def test_a_route_selected_event_renders_as_camel_case_json_with_exact_numbers() -> None:
    quote = VenueQuote(
        venue="raydium", amount_in=2**60, amount_out=277_500_000, fee=3_750_000,
        price_impact_bps=Decimal("12.50"), path=("in", "out"),
    )
    leg = RouteLeg(venue="raydium", amount_in=2**60, amount_out=277_500_000, path=("in", "out"))
    decision = RoutingDecision(
        token_in="in", token_out="out", amount_in=2**60, quotes=(quote,), legs=(leg,),
        amount_out=277_500_000, reason="best net output",
    )
    event = RouteSelected(**META, attempt=1, decision=decision, min_amount_out=276_112_500)
    rendered = CODEC.event_to_json(event)
    assert json.loads(json.dumps(rendered)) == rendered
    assert event_type_name(event) == "RouteSelected"
    assert rendered == {
        "attempt": 1,
        "minAmountOut": "276112500",
        "decision": {
            "tokenIn": "in",
            "tokenOut": "out",
            "amountIn": str(2**60),
            "amountOut": "277500000",
            "reason": "best net output",
            "quotes": [
                {
                    "venue": "raydium", "amountIn": str(2**60), "amountOut": "277500000",
                    "fee": "3750000", "priceImpactBps": "12.50", "path": ["in", "out"],
                }
            ],
            "legs": [
                {"venue": "raydium", "amountIn": str(2**60), "amountOut": "277500000",
                 "path": ["in", "out"]}
            ],
        },
    }


def test_json_renders_times_in_iso_format_and_decimals_without_exponents() -> None:
    retry = RetryScheduled(**META, next_attempt=2, delay_ms=1000, retry_at=T0)
    assert CODEC.event_to_json(retry) == {
        "nextAttempt": 2, "delayMs": 1000, "retryAt": "2025-03-01T12:00:00.123456+00:00"
    }
    confirmed = OrderConfirmed(
        **META, attempt=1, signature="s", amount_out=1, executed_price=Decimal("1E-7"), slot=5
    )
    assert CODEC.event_to_json(confirmed)["executedPrice"] == "0.0000001"


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_every_event_renders_as_json(event_type: type[Any], data: st.DataObject) -> None:
    rendered = CODEC.event_to_json(data.draw(messages(event_type)))
    assert json.loads(json.dumps(rendered)) == rendered
