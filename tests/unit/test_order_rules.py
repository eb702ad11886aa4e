"""The rule book: one range per rule, errors keyed by the field at fault, digits counted
exactly; the edge and the decider apply the same rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.orders.rules import (
    MAX_AMOUNT,
    MAX_SLIPPAGE_BPS,
    MIN_SLIPPAGE_BPS,
    FieldError,
    order_errors,
    significant_digits,
)
from domain.orders.status import OrderType, TimeInForce, Trigger

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
COMMON: dict[str, object] = {"token_in": "in", "token_out": "out", "amount_in": 10**9,
                             "slippage_bps": 50, "token_in_decimals": 9,
                             "token_out_decimals": 6}


def fields(order_type: OrderType, **values: object) -> list[str]:
    return [error.field for error in order_errors(order_type, {**COMMON, **values}, now=NOW)]


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("amount_in", [1, MAX_AMOUNT], [0, MAX_AMOUNT + 1, 2**64 - 1]),
    ("slippage_bps", [MIN_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS], [0, MAX_SLIPPAGE_BPS + 1, 10_000]),
    ("token_in_decimals", [0, 18], [19, 255, -1]),
    ("token_out_decimals", [0, 18], [19, 255]),
])
def test_one_range_per_rule(name: str, good: list[int], bad: list[int]) -> None:
    for value in good:
        assert fields(OrderType.MARKET, **{name: value}) == []
    for value in bad:
        assert fields(OrderType.MARKET, **{name: value}) == [name]


def test_errors_name_every_field_at_fault() -> None:
    errors = order_errors(OrderType.LIMIT, {**COMMON, "slippage_bps": 0, "max_price": Decimal(1),
                                            "time_in_force": TimeInForce.GTD}, now=NOW)
    assert {error.field for error in errors} == {"slippage_bps", "max_price", "limit_price",
                                                 "expires_at"}
    assert all(isinstance(error, FieldError) and error.message for error in errors)


def test_the_terms_of_each_order_type() -> None:
    later = NOW + timedelta(hours=1)
    assert fields(OrderType.MARKET, limit_price=Decimal(1)) == ["limit_price"]
    assert fields(OrderType.MARKET, time_in_force=TimeInForce.GTC) == []  # the default is no term
    assert fields(OrderType.MARKET, time_in_force=TimeInForce.GTD, expires_at=later) == [
        "expires_at", "time_in_force"]
    assert fields(OrderType.LIMIT, limit_price=Decimal(1)) == []
    assert fields(OrderType.SNIPER, trigger=Trigger.PRICE) == ["trigger"]
    assert fields(OrderType.SNIPER, trigger=Trigger.LIQUIDITY) == ["min_liquidity_usd"]
    assert fields(OrderType.SNIPER, trigger=Trigger.POOL_CREATED) == []
    assert fields(OrderType.LIMIT, limit_price=Decimal(1), time_in_force=TimeInForce.GTD,
                  expires_at=NOW) == ["expires_at"]  # not in the future


@pytest.mark.parametrize(("text", "digits"), [
    ("185.50", 4), ("0.0001", 1), ("1" + "0" * 30 + "1", 32), ("1" + "0" * 40, 1),
    ("0." + "0" * 40 + "1234567890123456789", 19), ("0", 0),
])
def test_significant_digits_are_exact_at_any_length(text: str, digits: int) -> None:
    assert significant_digits(Decimal(text)) == digits


@given(st.integers(1, 10**80), st.integers(-80, 80))
def test_significant_digits_ignore_scale_and_trailing_zeros(coefficient: int, exponent: int) -> None:
    expected = len(str(coefficient).rstrip("0"))
    exact = Decimal((0, tuple(int(d) for d in str(coefficient)), exponent))  # no context
    assert significant_digits(exact) == expected
