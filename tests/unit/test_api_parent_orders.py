"""Twap and dca orders at the HTTP edge: what is accepted, and the clear 400 of each mistake
(nothing is sent for a refused request)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

import pytest

from api.errors import ApiError
from api.requests import OrderRequest, parse_order_request
from domain.orders.commands import ExecuteOrder
from domain.orders.terms import DcaTerms, TwapTerms
from domain.tokens import TokenRegistry
from tests.unit.test_api_http import NOW, RecordingSender, serving

REGISTRY = TokenRegistry.default()
TWAP = {"orderType": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1",
        "slices": 3, "intervalS": 5}
DCA = {"orderType": "dca", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "1000",
       "amountPerSlice": "300", "intervalS": 60}


def order(body: Mapping[str, object], min_interval_s: int = 1) -> OrderRequest:
    return parse_order_request(json.dumps(body).encode(), REGISTRY, now=NOW,
                               min_interval_s=min_interval_s)


def fields_refused(body: Mapping[str, object], min_interval_s: int = 1) -> dict[str, str]:
    with pytest.raises(ApiError) as caught:
        order(body, min_interval_s)
    assert caught.value.status == 400
    return {error.field: error.message for error in caught.value.detail}


def test_a_twap_is_read_exactly() -> None:
    terms = order({**TWAP, "minSlicePrice": "150.5", "maxSlicePrice": 200}).terms
    assert isinstance(terms, TwapTerms)
    assert (terms.amount_in, terms.slices, terms.interval_s) == (10**9, 3, 5)
    assert (terms.min_slice_price, terms.max_slice_price) == (Decimal("150.5"), Decimal("200"))


def test_a_dca_is_read_exactly_with_its_end() -> None:
    end = (NOW + timedelta(days=1)).isoformat()
    terms = order({**DCA, "amountPerSlice": "250.5", "endAt": end}).terms
    assert isinstance(terms, DcaTerms)
    assert (terms.amount_in, terms.amount_per_slice) == (1_000 * 10**6, 250_500_000)
    assert terms.end_at == NOW + timedelta(days=1)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"slices": 0}, "slices", "out of range"),
    ({"slices": -2}, "slices", "not a whole number"),
    ({"slices": 1001}, "slices", "out of range"),
    ({"slices": "two"}, "slices", "not a whole number"),
    ({"intervalS": 0}, "intervalS", "too short"),
    ({"intervalS": 1.5}, "intervalS", "not a whole number"),
    ({"amountIn": "0.000000002"}, "slices", "empty"),  # 2 lamports in 3 slices
    ({"minSlicePrice": "200", "maxSlicePrice": "100"}, "minSlicePrice", "above"),
    ({"minSlicePrice": "-1"}, "minSlicePrice", "not a price"),
    ({"limitPrice": "100"}, "limitPrice", "only for limit"),
    ({"amountPerSlice": "0.1"}, "amountPerSlice", "only for dca"),
])
def test_a_bad_twap_is_refused_naming_the_field(change: dict[str, object], field: str,
                                                words: str) -> None:
    refused = fields_refused({**TWAP, **change})
    assert words in refused[field], refused


def test_twap_terms_are_required_and_refused_on_other_types() -> None:
    refused = fields_refused({"orderType": "twap", "tokenIn": "SOL", "tokenOut": "USDC",
                              "amountIn": "1"})
    assert "required" in refused["slices"] and "required" in refused["intervalS"]
    market = fields_refused({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1",
                             "slices": 3})
    assert "only for twap" in market["slices"]


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"amountPerSlice": "1001"}, "amountPerSlice", "more than amountIn"),
    ({"amountPerSlice": "0.5"}, "amountPerSlice", "at most 1000"),  # 2,000 slices
    ({"amountPerSlice": "0"}, "amountPerSlice", "greater than zero"),
    ({"amountPerSlice": "0.0000001"}, "amountPerSlice", "fractional digits"),  # USDC has 6
    ({"endAt": "2020-01-01T00:00:00Z"}, "endAt", "in the past"),
    ({"endAt": "tomorrow"}, "endAt", "ISO 8601"),
    ({"slices": 3}, "slices", "only for twap"),
])
def test_a_bad_dca_is_refused_naming_the_field(change: dict[str, object], field: str,
                                               words: str) -> None:
    refused = fields_refused({**DCA, **change})
    assert words in refused[field], refused


def test_the_edge_holds_the_interval_to_its_configured_minimum() -> None:
    assert "at least 30 s" in fields_refused({**TWAP, "intervalS": 10}, 30)["intervalS"]
    assert order({**TWAP, "intervalS": 30}, 30).terms.order_type.value == "twap"


async def test_a_refused_twap_answers_400_and_sends_nothing() -> None:
    sender = RecordingSender()
    async with serving(sender) as client:
        refused = await client.post("/api/orders/execute", json={**TWAP, "slices": 0})
        accepted = await client.post("/api/orders/execute", json=TWAP)
    assert refused.status_code == 400 and "slices" in refused.text
    assert accepted.status_code == 201
    (sent,) = sender.sent
    assert isinstance(sent, ExecuteOrder) and isinstance(sent.terms, TwapTerms)
