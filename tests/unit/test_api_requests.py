"""The order request: every accepted spelling, every rejected input (named), exact money."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.requests import (
    DEFAULT_SLIPPAGE_BPS,
    OrderRequest,
    parse_cancel_request,
    parse_order_request,
)
from domain.orders.status import OrderType
from domain.orders.terms import MarketTerms
from domain.tokens import BONK, SOL, USDC, USDT, Token, TokenRegistry, format_amount

REGISTRY = TokenRegistry.default()
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def order(body: Mapping[str, object] | str) -> OrderRequest:
    """Parse `body`: a dict is dumped as JSON, a str is sent as is (raw JSON text)."""
    raw = body if isinstance(body, str) else json.dumps(body)
    return parse_order_request(raw.encode(), REGISTRY, now=NOW)


def rejection(body: Mapping[str, object] | str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        order(body)
    return caught.value


def fields_named(error: ApiError) -> list[str]:
    return [detail.field for detail in error.detail]


BASE = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}


# --- accepted spellings ------------------------------------------------------------------------


def test_the_canonical_body_is_parsed_into_base_units_and_whole_bps() -> None:
    request = order({**BASE, "orderType": "market", "slippageBps": 75, "clientOrderId": "k-1"})

    assert request == OrderRequest(MarketTerms(
        token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL", token_out_symbol="USDC",
        token_in_decimals=9, token_out_decimals=6, amount_in=1_500_000_000, slippage_bps=75,
        client_order_id="k-1"))


def test_a_missing_order_type_means_market_and_missing_slippage_means_50_bps() -> None:
    request = order(BASE)

    assert request.order_type is OrderType.MARKET
    assert request.terms.slippage_bps == DEFAULT_SLIPPAGE_BPS == 50
    assert request.client_order_id is None


def test_amount_is_an_alias_of_amount_in() -> None:
    assert order({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}).terms.amount_in == 1_500_000_000


@pytest.mark.parametrize(
    ("field", "raw", "bps"),
    [
        ("slippageBps", "50", 50),
        ("slippageBps", '"50"', 50),
        ("slippageBps", "5000", 5000),
        ("slippage", "0.01", 100),
        ("slippage", "0.0001", 1),
        ("slippage", "0.5", 5000),
        ("slippage", '"0.005"', 50),
        ("slippage", "0.010000000000000000000000000000000", 100),
        ("slippageTolerance", "0.5", 50),
        ("slippageTolerance", "1", 100),
        ("slippageTolerance", "0.01", 1),
        ("slippageTolerance", '"2.5"', 250),
    ],
)
def test_every_slippage_spelling_becomes_whole_basis_points(field: str, raw: str, bps: int) -> None:
    body = f'{{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "{field}": {raw}}}'

    assert order(body).terms.slippage_bps == bps


def test_an_alias_given_as_null_counts_as_not_given() -> None:
    request = order({**BASE, "amount": None, "slippage": None, "slippageBps": 20})

    assert (request.terms.amount_in, request.terms.slippage_bps) == (1_500_000_000, 20)


@pytest.mark.parametrize(
    ("token_in", "token_out", "expected"),
    [
        ("SOL", "USDC", (SOL, USDC)),
        ("sol", "usdc", (SOL, USDC)),
        ("WSOL", "USDT", (SOL, USDT)),
        (SOL.mint, USDC.mint, (SOL, USDC)),
        ("USDC", BONK.mint, (USDC, BONK)),
    ],
)
def test_tokens_may_be_symbols_in_any_case_or_mints(
    token_in: str, token_out: str, expected: tuple[Token, Token]
) -> None:
    request = order({"tokenIn": token_in, "tokenOut": token_out, "amountIn": "1"})

    assert (request.terms.token_in, request.terms.token_out) == (expected[0].mint,
                                                                  expected[1].mint)
    assert request.terms.token_in_symbol == expected[0].symbol


def test_sol_resolves_to_the_wrapped_sol_mint() -> None:
    assert order(BASE).terms.token_in == "So11111111111111111111111111111111111111112"


def test_the_fingerprint_ignores_spelling_but_not_terms() -> None:
    canonical = order({**BASE, "slippageBps": 100, "clientOrderId": "a"})
    legacy = order('{"tokenIn": "sol", "tokenOut": "USDC", "amount": 1.50, "slippage": 0.01}')
    larger = order({**BASE, "amountIn": "1.6", "slippageBps": 100})

    assert canonical.fingerprint() == legacy.fingerprint()
    assert canonical.fingerprint() != larger.fingerprint()


# --- exact money --------------------------------------------------------------------------------


def test_the_smallest_sol_amount_is_one_lamport() -> None:
    assert order({**BASE, "amountIn": "0.000000001"}).terms.amount_in == 1


def test_a_json_number_is_read_from_its_text_not_through_a_float() -> None:
    # float(1.1) * 10**9 == 1100000000.0000002: a float anywhere would show here.
    assert order('{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 1.1}').terms.amount_in == 1100000000
    assert order('{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.3}').terms.amount_in == 300_000_000


def test_a_number_with_more_digits_than_a_float_holds_is_still_exact() -> None:
    body = '{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 9007199254.740993001}'

    assert order(body).terms.amount_in == 9_007_199_254_740_993_001


DECIMAL_TOKENS = st.sampled_from([token for token in REGISTRY])


@st.composite
def decimal_texts(draw: st.DrawFn) -> tuple[Token, str]:
    """A token and a valid human amount for it: at most its decimals, never zero."""
    token = draw(DECIMAL_TOKENS)
    whole = draw(st.integers(min_value=0, max_value=10**9))
    places = draw(st.integers(min_value=0, max_value=token.decimals))
    fraction = draw(st.text("0123456789", min_size=places, max_size=places))
    text = f"{whole}.{fraction}" if fraction else str(whole)
    if int(str(whole) + fraction) == 0:
        text = "1"
    return token, text


@given(decimal_texts(), st.booleans())
def test_any_valid_decimal_round_trips_exactly(case: tuple[Token, str], as_number: bool) -> None:
    token, text = case
    other = USDC if token != USDC else SOL
    value = text if as_number else json.dumps(text)
    body = f'{{"tokenIn": "{token.mint}", "tokenOut": "{other.mint}", "amountIn": {value}}}'

    units = order(body).terms.amount_in

    whole, _, fraction = text.partition(".")
    assert units == int(whole) * 10**token.decimals + int(fraction.ljust(token.decimals, "0") or 0)
    assert format_amount(units, token) == _normalised(text)


def _normalised(text: str) -> str:
    whole, _, fraction = text.partition(".")
    whole, fraction = str(int(whole)), fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


@given(
    st.integers(min_value=1, max_value=5000),
    st.sampled_from(["slippageBps", "slippage", "slippageTolerance"]),
)
def test_any_whole_bps_survives_every_slippage_unit(bps: int, field: str) -> None:
    exponent = {"slippageBps": 0, "slippage": 4, "slippageTolerance": 2}[field]
    whole, rest = divmod(bps, 10**exponent)
    text = f"{whole}.{str(rest).rjust(exponent, '0')}" if exponent else str(bps)

    body = f'{{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "{field}": {text}}}'

    assert order(body).terms.slippage_bps == bps


# --- rejected inputs, each naming its field -----------------------------------------------------


def _with(**changes: object) -> str:
    return json.dumps({**BASE, **changes})


BAD_INPUTS = [
    # amounts
    pytest.param(_with(amountIn="5_000"), "amountIn", "separator", id="underscore"),
    pytest.param(_with(amountIn=" 5 "), "amountIn", "whitespace", id="whitespace"),
    pytest.param(_with(amountIn="-0"), "amountIn", "sign", id="negative-zero"),
    pytest.param(_with(amountIn="-1.5"), "amountIn", "sign", id="negative"),
    pytest.param(_with(amountIn="+1.5"), "amountIn", "sign", id="plus-sign"),
    pytest.param(_with(amountIn="1e400"), "amountIn", "exponent", id="exponent-string"),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":1e400}',
        "amountIn", "exponent", id="exponent-number",
    ),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":-2}',
        "amountIn", "sign", id="negative-number",
    ),
    pytest.param(_with(amountIn="0"), "amountIn", "greater than zero", id="zero"),
    pytest.param(_with(amountIn="0.000"), "amountIn", "greater than zero", id="zero-with-fraction"),
    pytest.param(_with(amountIn="0.0000000001"), "amountIn", "at most 9", id="too-precise-sol"),
    pytest.param(
        _with(tokenIn="USDC", tokenOut="SOL", amountIn="1.0000001"),
        "amountIn", "at most 6", id="too-precise-usdc",
    ),
    pytest.param(_with(amountIn="NaN"), "amountIn", "not a plain decimal", id="nan-string"),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":NaN}',
        "amountIn", "not a plain decimal", id="nan-literal",
    ),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":Infinity}',
        "amountIn", "not a plain decimal", id="infinity",
    ),
    pytest.param(_with(amountIn="1,5"), "amountIn", "separator", id="comma"),
    pytest.param(_with(amountIn="1."), "amountIn", "not a plain decimal", id="trailing-dot"),
    pytest.param(_with(amountIn=".5"), "amountIn", "not a plain decimal", id="leading-dot"),
    pytest.param(_with(amountIn=""), "amountIn", "empty", id="empty"),
    pytest.param(_with(amountIn="١٢"), "amountIn", "not a plain decimal", id="arabic-digits"),
    pytest.param(_with(amountIn="99999999999999999999"), "amountIn", "u64", id="beyond-u64"),
    pytest.param(_with(amountIn=True), "amountIn", "decimal string or a JSON number", id="boolean"),
    pytest.param(_with(amountIn=[1]), "amountIn", "decimal string or a JSON number", id="array"),
    pytest.param(
        json.dumps({"tokenIn": "SOL", "tokenOut": "USDC"}),
        "amountIn", "required", id="missing",
    ),
    pytest.param(_with(amount="1.5"), "amount", "not both", id="amount-and-alias"),
    # tokens
    pytest.param(_with(tokenIn="DOGE"), "tokenIn", "unknown token", id="unknown-token-in"),
    pytest.param(
        _with(tokenOut="So11111111111111111111111111111111111111113"),
        "tokenOut", "unknown token", id="unknown-mint",
    ),
    pytest.param(_with(tokenOut="SOL"), "tokenOut", "same token", id="same-symbol"),
    pytest.param(_with(tokenOut="wSOL"), "tokenOut", "same token", id="sol-and-wsol"),
    pytest.param(_with(tokenOut=SOL.mint), "tokenOut", "same token", id="sol-and-its-mint"),
    pytest.param(_with(tokenIn=5), "tokenIn", "must be a string", id="token-number"),
    pytest.param(
        json.dumps({"tokenOut": "USDC", "amountIn": "1"}),
        "tokenIn", "required", id="token-missing",
    ),
    # slippage
    pytest.param(_with(slippageBps=0), "slippageBps", "out of range", id="bps-zero"),
    pytest.param(_with(slippageBps=5001), "slippageBps", "out of range", id="bps-too-high"),
    pytest.param(
        _with(slippageBps=-5),
        "slippageBps", "not a plain positive decimal", id="bps-negative",
    ),
    pytest.param(_with(slippageBps="50.5"), "slippageBps", "whole number", id="bps-fraction"),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","slippageBps":5e1}',
        "slippageBps", "not a plain", id="bps-exponent",
    ),
    pytest.param(
        _with(slippage="0.00015"),
        "slippage", "whole number", id="fraction-not-whole-bps",
    ),
    pytest.param(_with(slippage="0.6"), "slippage", "out of range", id="fraction-too-high"),
    pytest.param(_with(slippage="1"), "slippage", "out of range", id="fraction-100-percent"),
    pytest.param(
        _with(slippageTolerance="0.005"),
        "slippageTolerance", "whole number", id="percent-not-whole-bps",
    ),
    pytest.param(
        _with(slippageTolerance="51"),
        "slippageTolerance", "out of range", id="percent-too-high",
    ),
    pytest.param(
        _with(slippageTolerance="0"),
        "slippageTolerance", "out of range", id="percent-zero",
    ),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","slippage":NaN}',
        "slippage", "not a plain", id="fraction-nan",
    ),
    pytest.param(
        _with(slippage="0." + "0" * 70 + "1"),
        "slippage", "longer than", id="fraction-too-long",
    ),
    pytest.param(
        _with(slippageBps=50, slippage=0.005),
        "slippage", "only one", id="bps-and-fraction",
    ),
    pytest.param(
        _with(slippage=0.005, slippageTolerance=0.5),
        "slippageTolerance", "only one", id="fraction-and-percent",
    ),
    # order type
    pytest.param(_with(orderType="limit"), "limitPrice", "is required", id="limit-no-price"),
    pytest.param(_with(orderType="sniper"), "trigger", "is required", id="sniper-no-trigger"),
    pytest.param(_with(orderType="stop"), "orderType", "unknown order type", id="unknown-type"),
    pytest.param(
        _with(orderType="MARKET"),
        "orderType", "unknown order type", id="type-wrong-case",
    ),
    # unknown fields and keys
    pytest.param(
        json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amountln": "1"}),
        "amountln", "did you mean 'amountIn'", id="typo-amountln",
    ),
    pytest.param(_with(slipage=0.01), "slipage", "did you mean 'slippage'", id="typo-slipage"),
    pytest.param(
        _with(limitPrice="185"), "limitPrice", "only for limit orders", id="limit-price-on-market"
    ),
    pytest.param(_with(token_in="SOL"), "token_in", "unknown field", id="snake-case-name"),
    pytest.param(
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","amountIn":"1000"}',
        "amountIn", "more than once", id="duplicate-key",
    ),
    pytest.param(_with(clientOrderId=""), "clientOrderId", "printable ASCII", id="empty-key"),
    pytest.param(
        _with(clientOrderId=" k"),
        "clientOrderId", "printable ASCII", id="key-leading-blank",
    ),
    pytest.param(
        _with(clientOrderId="x" * 129),
        "clientOrderId", "printable ASCII", id="key-too-long",
    ),
    pytest.param(
        _with(clientOrderId="ключ"),
        "clientOrderId", "printable ASCII", id="key-not-ascii",
    ),
    pytest.param(_with(clientOrderId=7), "clientOrderId", "must be a string", id="key-number"),
    pytest.param("[1, 2]", "body", "JSON object", id="array-body"),
    pytest.param('"SOL"', "body", "JSON object", id="string-body"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_INPUTS)
def test_a_bad_input_is_a_400_naming_its_field(body: str, field: str, message: str) -> None:
    error = rejection(body)

    assert error.status == 400
    assert error.code == "invalid_request"
    assert field in fields_named(error)
    assert any(message in d.message for d in error.detail if d.field == field), error.detail


@pytest.mark.parametrize("body", ["", "   ", "{", '{"tokenIn": }', "not json", "[" * 100_000])
def test_a_body_that_is_not_json_is_a_400_about_the_body(body: str) -> None:
    error = rejection(body)

    assert (error.status, error.code, fields_named(error)) == (400, "malformed_json", ["body"])


def test_invalid_utf8_is_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        parse_order_request(b'{"tokenIn": "\xff"}', REGISTRY, now=NOW)

    assert caught.value.status == 400


def test_every_bad_field_is_reported_at_once() -> None:
    error = rejection(_with(tokenIn="DOGE", amountIn="-1", slippage="2", orderType="limit"))

    assert set(fields_named(error)) == {"tokenIn", "slippage", "limitPrice"}
    # The amount cannot be checked without knowing tokenIn's decimals: it is not reported.


def test_an_unknown_token_does_not_hide_a_missing_amount() -> None:
    error = rejection({"tokenIn": "DOGE", "tokenOut": "USDC"})

    assert set(fields_named(error)) == {"tokenIn", "amountIn"}


def test_a_huge_value_is_cut_short_in_the_message() -> None:
    error = rejection(_with(tokenIn="X" * 10_000))

    assert len(error.message) < 500


# --- cancel body ---------------------------------------------------------------------------------


def test_a_cancel_may_have_no_body_or_a_reason() -> None:
    assert parse_cancel_request(b"").reason is None
    assert parse_cancel_request(b'{"reason": "changed my mind"}').reason == "changed my mind"


def test_a_cancel_body_rejects_unknown_fields() -> None:
    with pytest.raises(ApiError) as caught:
        parse_cancel_request(b'{"reson": "typo"}')

    assert caught.value.status == 400
    assert fields_named(caught.value) == ["reson"]
