"""The edge accepts exactly what the event log can carry: every amount and price field over its
whole range answers 201 or a 4xx naming the field, never a 5xx, and what is accepted survives
the codec unchanged (the command bus encodes with the same codec before producing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.orders.commands import EdgeCommand
from domain.orders.rules import MAX_AMOUNT
from domain.tokens import SOL, format_amount
from domain.tokens import USDC as _USDC
from schemas.codec import Codec
from tests.unit.test_api_http import serving

CODEC = Codec.load()
LIMIT = {"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2"}
SNIPER = {"orderType": "sniper", "tokenIn": "USDC", "tokenOut": "BONK", "amountIn": "100",
          "trigger": "liquidity"}


class EncodingSender:
    """Records what the command bus would produce: the command through the codec and back."""

    def __init__(self) -> None:
        self.sent: list[EdgeCommand] = []

    async def send(self, command: EdgeCommand) -> RecordMetadata:
        decoded = CODEC.decode_command(CODEC.encode_command(command))
        assert decoded == command, "the codec changed the command"
        self.sent.append(command)
        return RecordMetadata("t", 0, TopicPartition("t", 0), len(self.sent) - 1, -1, -1, 0)


@asynccontextmanager
async def edge() -> AsyncIterator[tuple[httpx.AsyncClient, EncodingSender]]:
    sender = EncodingSender()
    async with serving(sender, raise_app_exceptions=False) as client:  # type: ignore[arg-type]
        yield client, sender


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/orders/execute", json=body)


def named(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in response.json()["detail"]]


@pytest.mark.parametrize("units", [MAX_AMOUNT + 1, 2**64 - 1], ids=["2^63", "u64-max"])
async def test_an_amount_beyond_what_an_avro_long_carries_is_400_naming_it(units: int) -> None:
    async with edge() as (client, sender):
        response = await post(client, {"tokenIn": "SOL", "tokenOut": "USDC",
                                        "amountIn": format_amount(units, SOL)})
    assert response.status_code == 400, response.text
    assert named(response) == ["amountIn"]
    assert sender.sent == []


async def test_the_largest_amount_an_avro_long_carries_is_accepted() -> None:
    async with edge() as (client, sender):
        response = await post(client, {"tokenIn": "SOL", "tokenOut": "USDC",
                                        "amountIn": format_amount(MAX_AMOUNT, SOL)})
    assert response.status_code == 201, response.text
    assert [command.terms.amount_in for command in sender.sent  # type: ignore[union-attr]
            ] == [MAX_AMOUNT]


@pytest.mark.parametrize("field", ["limitPrice", "maxPrice", "minLiquidityUsd"])
@pytest.mark.parametrize("text", ["1" + "0" * 30 + "1", "1" + "0" * 40 + "1",
                                  "0." + "0" * 40 + "1234567890123456789"])
async def test_significant_digits_are_counted_exactly_at_any_length(field: str, text: str) -> None:
    body = {**(LIMIT if field == "limitPrice" else SNIPER), field: text}
    if field != "limitPrice":
        body.setdefault("minLiquidityUsd", "1")
        body[field] = text
    async with edge() as (client, sender):
        response = await post(client, body)
    assert response.status_code == 400, response.text
    assert named(response) == [field]
    assert "significant digits" in response.json()["detail"][0]["message"]


# --- the whole range of every amount and price field ----------------------------------------------


def _plain(value: Decimal) -> str:
    return format(value, "f")


AMOUNTS = st.one_of(
    st.integers(0, 2**64 + 10), st.integers(MAX_AMOUNT - 5, MAX_AMOUNT + 5),
    st.integers(2**64 - 5, 2**64 + 5), st.integers(10**30, 10**40),
)
PRICES = st.one_of(
    st.decimals(min_value=0, max_value=Decimal(10) ** 40, allow_nan=False,
                allow_infinity=False).map(_plain),
    st.decimals(min_value=0, max_value=1, places=40).map(_plain),
    st.from_regex(r"[0-9]{1,60}(\.[0-9]{1,30})?", fullmatch=True),
)


@pytest.fixture(scope="module")
async def one_edge() -> AsyncIterator[tuple[httpx.AsyncClient, EncodingSender]]:
    """One app for every example below (building one per example took most of the time);
    a POST without a clientOrderId leaves nothing behind that the next one could see."""
    async with edge() as pair:
        yield pair


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=AMOUNTS, limit=PRICES, max_price=PRICES, liquidity=PRICES,
       sniper=st.booleans())
async def test_no_amount_or_price_is_a_5xx_and_accepted_ones_survive_the_codec(
    one_edge: tuple[httpx.AsyncClient, EncodingSender],
    units: int, limit: str, max_price: str, liquidity: str, sniper: bool
) -> None:
    if sniper:
        body = {**SNIPER, "amountIn": format_amount(units, _USDC), "maxPrice": max_price,
                "minLiquidityUsd": liquidity}
    else:
        body = {**LIMIT, "amountIn": format_amount(units, SOL), "limitPrice": limit}
    client, sender = one_edge
    sender.sent.clear()
    response = await post(client, body)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        assert len(sender.sent) == 1  # and the sender checked it survived the codec
    else:
        assert sender.sent == [] and named(response)

