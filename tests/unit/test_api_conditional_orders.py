"""Limit and sniper orders at the HTTP edge: what is accepted, what each bad field answers,
and the cancel that the read model says is too late."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from api.errors import ApiError
from api.idempotency import order_id_for
from api.order_statuses import ReadModelStatuses
from api.requests import OrderRequest, parse_order_request
from domain.orders.commands import ExecuteOrder
from domain.orders.status import OrderStatus, OrderType, TimeInForce, Trigger
from domain.orders.terms import LimitTerms, OrderTerms, SniperTerms
from domain.tokens import TokenRegistry
from tests.unit.test_api_http import NOW, FixedStatuses, RecordingSender, serving

REGISTRY = TokenRegistry.default()
LIMIT = {"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2",
         "limitPrice": "190"}
SNIPER = {"orderType": "sniper", "tokenIn": "USDC", "tokenOut": "BONK", "amountIn": "100",
          "trigger": "liquidity", "minLiquidityUsd": "50000"}
NEW_MINT = "WiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiFWiF1"
LATER = (NOW + timedelta(hours=1)).isoformat()


def limit_of(terms: OrderTerms) -> LimitTerms:
    assert isinstance(terms, LimitTerms)
    return terms


def sniper_of(terms: OrderTerms) -> SniperTerms:
    assert isinstance(terms, SniperTerms)
    return terms


def order(body: Mapping[str, object]) -> OrderRequest:
    return parse_order_request(json.dumps(body).encode(), REGISTRY, now=NOW)


def rejection(body: Mapping[str, object]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        order(body)
    return caught.value


# --- accepted ---------------------------------------------------------------------------------


def test_a_limit_order_carries_its_exact_limit_and_is_good_till_cancelled() -> None:
    parsed = order({**LIMIT, "limitPrice": "190.125"})

    assert parsed.order_type is OrderType.LIMIT
    assert (limit_of(parsed.terms).limit_price, limit_of(parsed.terms).time_in_force) == (
        Decimal("190.125"), TimeInForce.GTC)
    assert limit_of(parsed.terms).expires_at is None


def test_a_json_number_limit_is_read_from_its_text() -> None:
    raw = b'{"orderType":"limit","tokenIn":"SOL","tokenOut":"USDC","amountIn":"1",' \
          b'"limitPrice":185.100000000000001}'
    parsed = parse_order_request(raw, REGISTRY, now=NOW)
    assert limit_of(parsed.terms).limit_price == Decimal("185.100000000000001")


@pytest.mark.parametrize(
    ("extra", "expires"),
    [
        ({"timeInForce": "GTD", "expiresAt": LATER}, NOW + timedelta(hours=1)),
        ({"expiresAt": LATER}, NOW + timedelta(hours=1)),  # alone, it means GTD
        ({"timeInForce": "gtd", "expiresAt": "2025-06-01T13:00:00"}, NOW + timedelta(hours=1)),
    ],
    ids=["explicit", "implied", "no-offset-is-utc"],
)
def test_a_gtd_order_expires_at_its_time(extra: dict[str, str], expires: datetime) -> None:
    parsed = order({**LIMIT, **extra})
    assert (limit_of(parsed.terms).time_in_force, limit_of(parsed.terms).expires_at) == (
        TimeInForce.GTD, expires)


def test_a_sniper_order_carries_its_trigger_threshold_and_guard() -> None:
    parsed = order({**SNIPER, "maxPrice": "0.00003"})

    assert sniper_of(parsed.terms).trigger is Trigger.LIQUIDITY
    assert sniper_of(parsed.terms).min_liquidity_usd == Decimal(50_000)
    assert sniper_of(parsed.terms).max_price == Decimal("0.00003")


def test_a_sniper_may_want_a_mint_nobody_lists_yet_given_its_decimals() -> None:
    parsed = order({**SNIPER, "tokenOut": NEW_MINT, "tokenOutDecimals": 6,
                    "trigger": "pool_created", "minLiquidityUsd": None})

    assert (parsed.terms.token_out, parsed.terms.token_out_decimals) == (NEW_MINT, 6)
    assert sniper_of(parsed.terms).trigger is Trigger.POOL_CREATED


def test_the_fingerprint_tells_limits_apart_but_not_their_spelling() -> None:
    assert order(LIMIT).fingerprint() == order({**LIMIT, "limitPrice": "190.00"}).fingerprint()
    assert order(LIMIT).fingerprint() != order({**LIMIT, "limitPrice": "191"}).fingerprint()
    assert order(LIMIT).fingerprint() != order({**LIMIT, "orderType": "market",
                                                "limitPrice": None}).fingerprint()


# --- refused: one 400 per bad field -----------------------------------------------------------


BAD = [
    pytest.param({**LIMIT, "limitPrice": None}, "limitPrice", "is required", id="limit-no-price"),
    pytest.param({**LIMIT, "limitPrice": "0"}, "limitPrice", "greater than zero", id="zero"),
    pytest.param({**LIMIT, "limitPrice": "-1"}, "limitPrice", "plain positive", id="negative"),
    pytest.param({**LIMIT, "limitPrice": "1e3"}, "limitPrice", "plain positive", id="exponent"),
    pytest.param({**LIMIT, "limitPrice": "1.234567890123456789"}, "limitPrice",
                 "18 significant digits", id="too-precise"),
    pytest.param({**LIMIT, "trigger": "liquidity"}, "trigger", "only for sniper", id="limit-trig"),
    pytest.param({**LIMIT, "maxPrice": "1"}, "maxPrice", "only for sniper", id="limit-max"),
    pytest.param({**LIMIT, "timeInForce": "GTD"}, "expiresAt", "required for timeInForce GTD",
                 id="gtd-without-expiry"),
    pytest.param({**LIMIT, "timeInForce": "GTC", "expiresAt": LATER}, "expiresAt",
                 "only for timeInForce GTD", id="gtc-with-expiry"),
    pytest.param({**LIMIT, "timeInForce": "IOC"}, "timeInForce", "expected GTC", id="unknown-tif"),
    pytest.param({**LIMIT, "expiresAt": "2025-06-01T11:59:59Z"}, "expiresAt", "in the past",
                 id="expiry-in-the-past"),
    pytest.param({**LIMIT, "expiresAt": NOW.isoformat()}, "expiresAt", "in the past",
                 id="expiry-now"),
    pytest.param({**LIMIT, "expiresAt": "tomorrow"}, "expiresAt", "ISO 8601", id="expiry-text"),
    pytest.param({**SNIPER, "trigger": None}, "trigger", "is required", id="sniper-no-trigger"),
    pytest.param({**SNIPER, "trigger": "price"}, "trigger", "unknown trigger", id="sniper-price"),
    pytest.param({**SNIPER, "minLiquidityUsd": None}, "minLiquidityUsd",
                 "required for trigger liquidity", id="liquidity-no-threshold"),
    pytest.param({**SNIPER, "minLiquidityUsd": "lots"}, "minLiquidityUsd", "not a USD amount",
                 id="threshold-text"),
    pytest.param({**SNIPER, "maxPrice": "0"}, "maxPrice", "greater than zero", id="max-zero"),
    pytest.param({**SNIPER, "limitPrice": "1"}, "limitPrice", "only for limit", id="sniper-limit"),
    pytest.param({**SNIPER, "tokenOut": NEW_MINT}, "tokenOut", "unknown token",
                 id="new-mint-without-decimals"),
    pytest.param({**SNIPER, "tokenOut": "not-a-mint!", "tokenOutDecimals": 6}, "tokenOut",
                 "not a mint", id="bad-mint"),
    pytest.param({**SNIPER, "tokenOutDecimals": 6}, "tokenOutDecimals", "has 5 decimals",
                 id="wrong-decimals"),
    pytest.param({**SNIPER, "tokenOut": NEW_MINT, "tokenOutDecimals": 19}, "tokenOutDecimals",
                 "0 to 18", id="decimals-out-of-range"),
    pytest.param({**LIMIT, "orderType": "market"}, "limitPrice", "only for limit", id="mkt-lim"),
    pytest.param({**LIMIT, "orderType": "market", "limitPrice": None, "expiresAt": LATER},
                 "expiresAt", "executes at once", id="market-expiry"),
    pytest.param({**LIMIT, "orderType": "market", "limitPrice": None, "timeInForce": "GTD"},
                 "timeInForce", "executes at once", id="market-gtd"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD)
def test_a_bad_conditional_field_is_a_400_naming_it(
    body: dict[str, object], field: str, message: str
) -> None:
    error = rejection({key: value for key, value in body.items() if value is not None})

    assert (error.status, error.code) == (400, "invalid_request")
    assert any(d.field == field and message in d.message for d in error.detail), error.detail


def test_every_bad_conditional_field_is_reported_at_once() -> None:
    error = rejection({**SNIPER, "trigger": "soon", "maxPrice": "x", "expiresAt": "2020-01-01"})
    assert {d.field for d in error.detail} == {"trigger", "maxPrice", "expiresAt"}


# --- over HTTP --------------------------------------------------------------------------------


async def test_a_limit_order_reaches_kafka_with_its_terms() -> None:
    sender = RecordingSender()
    async with serving(sender) as client:
        response = await client.post("/api/orders/execute",
                                      json={**LIMIT, "expiresAt": LATER, "clientOrderId": "l-1"})

    assert response.status_code == 201
    (command,) = sender.sent
    assert isinstance(command, ExecuteOrder)
    terms = limit_of(command.terms)
    assert (command.order_type, terms.limit_price, terms.time_in_force,
            terms.expires_at) == (OrderType.LIMIT, Decimal(190), TimeInForce.GTD,
                                  NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("status", "why"),
    [(OrderStatus.SUBMITTED, "may land"), (OrderStatus.BUILDING, "may land"),
     (OrderStatus.CONFIRMED, "has ended"), (OrderStatus.EXPIRED, "has ended"),
     (OrderStatus.CANCELLED, "has ended")],
)
async def test_a_cancel_after_submission_or_the_end_is_409_with_the_reason(
    status: OrderStatus, why: str
) -> None:
    sender = RecordingSender()
    async with serving(sender, statuses=FixedStatuses(status)) as client:
        response = await client.post(f"/api/orders/{order_id_for('o')}/cancel")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "too_late_to_cancel"
    assert status.value in body["message"] and why in body["message"]
    assert sender.sent == []


async def test_a_cancel_of_a_waiting_order_is_accepted() -> None:
    sender = RecordingSender()
    async with serving(sender, statuses=FixedStatuses(OrderStatus.WAITING)) as client:
        response = await client.post(f"/api/orders/{order_id_for('o')}/cancel")

    assert response.status_code == 202 and len(sender.sent) == 1


async def test_an_unreachable_read_model_leaves_the_cancel_to_the_order_agent() -> None:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool("postgresql://nobody@127.0.0.1:1/none", min_size=1,
                               open=False, timeout=0.1)
    await pool.open(wait=False)
    try:
        started = datetime.now(UTC)
        assert await ReadModelStatuses(pool, "public", timeout_s=0.1).status_of("o") is None
        assert datetime.now(UTC) - started < timedelta(seconds=2)
    finally:
        await pool.close()


async def test_a_sniper_for_an_unlisted_mint_reaches_kafka() -> None:
    sender = RecordingSender()
    body = {**SNIPER, "tokenOut": NEW_MINT, "tokenOutDecimals": 6, "maxPrice": "0.01"}
    async with serving(sender) as client:
        response = await client.post("/api/orders/execute", json=body)

    assert response.status_code == 201, response.text
    (command,) = sender.sent
    assert isinstance(command, ExecuteOrder)
    terms = sniper_of(command.terms)
    assert (terms.token_out, terms.token_out_decimals, terms.trigger) == (
        NEW_MINT, 6, Trigger.LIQUIDITY)
