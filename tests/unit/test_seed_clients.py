"""Clients of the five engines this one replaces, replayed against the HTTP edge in process.

Each request body below is the one a seed engine's README documents, sent byte for byte (the
JSON numbers included); each assertion is what that engine's clients read from the answer:
the status code, the fields they take, the order they meant. Kafka is a recording sender
(what reaches it is checked); the read side (GET, streams, stats) is replayed against real
services in tests/integration/test_seed_clients.py. docs/COMPATIBILITY.md is the table.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from api.requests import parse_order_request
from domain.orders.commands import ExecuteOrder
from domain.orders.status import OrderType
from domain.tokens import SOL, USDC, TokenRegistry
from tests.unit.test_api_http import NOW, RecordingSender, serving

# (seed, documented body, amount of SOL in lamports, slippage in bps, limit price)
SEED_ORDERS = [
    pytest.param(b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "100", '
                 b'"slippageTolerance": 0.5}', 100_000_000_000, 50, None, id="000-percent"),
    pytest.param(b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", '
                 b'"amountIn": 1, "slippage": 0.01}', 1_000_000_000, 100, None, id="001-fraction"),
    pytest.param(b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", '
                 b'"amountIn": 1}', 1_000_000_000, 50, None, id="001-no-slippage"),
    pytest.param(b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", '
                 b'"amountIn": 1.0, "slippage": 0.01}', 1_000_000_000, 100, None, id="002-number"),
    pytest.param(b'{"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, '
                 b'"targetPrice": 185}', 1_000_000_000, 50, Decimal(185), id="003-targetPrice"),
    pytest.param(b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1.5, "slippage": 0.01}',
                 1_500_000_000, 100, None, id="004-amount"),
]


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def client(sender: RecordingSender) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(sender) as client:
        yield client


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/api/orders/execute", content=body,
                             headers={"content-type": "application/json"})


# --- POST /api/orders/execute -----------------------------------------------------------------


@pytest.mark.parametrize(("body", "lamports", "bps", "limit"), SEED_ORDERS)
async def test_every_documented_order_body_is_accepted_as_the_order_it_meant(
    client: httpx.AsyncClient, sender: RecordingSender, body: bytes, lamports: int, bps: int,
    limit: Decimal | None,
) -> None:
    response = await post(client, body)

    assert response.status_code == 201, response.text
    answer = response.json()
    # What the seeds' clients read: orderId (all), status "pending" (000, 002), the stream
    # URL (001, 002 give a path; ours is absolute and ends with that path).
    assert answer["status"] == "pending"
    assert answer["success"] is True  # 000 and 002 clients test it
    assert answer["websocketUrl"].endswith(f"/api/orders/{answer['orderId']}/stream")
    (command,) = sender.sent
    assert isinstance(command, ExecuteOrder)
    assert command.order_id == answer["orderId"]
    terms = command.terms
    assert (terms.token_in, terms.token_out, terms.amount_in, terms.slippage_bps) == (
        SOL.mint, USDC.mint, lamports, bps)
    assert terms.order_type is (OrderType.MARKET if limit is None else OrderType.LIMIT)
    assert getattr(terms, "limit_price", None) == limit


def test_target_price_and_limit_price_are_one_term() -> None:
    def limit(body: dict[str, object]) -> object:
        parsed = parse_order_request(json.dumps(body).encode(), TokenRegistry.default(), now=NOW)
        return parsed.fingerprint()

    base = {"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}
    assert limit({**base, "targetPrice": 185}) == limit({**base, "limitPrice": "185.0"})


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(b'{"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", '
                     b'"amount": 1, "targetPrice": 185, "limitPrice": "185"}',
                     "targetPrice", "alias of limitPrice", id="both"),
        pytest.param(b'{"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", '
                     b'"amount": 1, "targetPrice": -185}',
                     "targetPrice", "positive decimal", id="negative"),
        pytest.param(b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", '
                     b'"amount": 1, "targetPrice": 185}',
                     "targetPrice", "only for limit orders", id="market"),
        # 000's optional floor: refused by name rather than ignored (docs/COMPATIBILITY.md).
        pytest.param(b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "100", '
                     b'"slippageTolerance": 0.5, "minAmountOut": "99"}',
                     "minAmountOut", "unknown field", id="000-minAmountOut"),
        # 001's documented errors: missing fields, a non-positive amount.
        pytest.param(b'{"orderType": "market", "tokenIn": "SOL"}', "tokenOut", "required",
                     id="001-missing"),
        pytest.param(b'{"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", '
                     b'"amountIn": 0}', "amountIn", "", id="001-zero"),
    ],
)
async def test_a_bad_seed_request_is_400_with_a_readable_message_naming_the_field(
    client: httpx.AsyncClient, sender: RecordingSender, body: bytes, field: str, message: str,
) -> None:
    response = await post(client, body)

    # 001 documents 400 with a string `error`; ours is a stable code, `message` the prose.
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert field in answer["message"]
    assert any(d["field"] == field and message in d["message"] for d in answer["detail"]), answer
    assert sender.sent == []


# --- health and order ids -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/health", "/health"])
async def test_health_answers_ok_with_a_timestamp_on_both_urls(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    answer = response.json()
    assert answer == {"status": "ok", "timestamp": answer["timestamp"]}
    stamped = datetime.fromisoformat(answer["timestamp"])
    assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_cancel_of_an_id_that_is_not_a_uuid_is_404_and_sends_nothing(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    response = await client.post("/api/orders/abc-123-456/cancel")  # 002's sample id

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert sender.sent == []


async def test_the_openapi_document_promises_no_validation_422(
    client: httpx.AsyncClient
) -> None:
    """A bad field is a 400 everywhere; the one 422 is an idempotency key reused with other
    terms (issue #11), and it is documented as that, not as FastAPI's validation error."""
    paths = (await client.get("/openapi.json")).json()["paths"]

    documented = {(path, status) for path, operations in paths.items()
                  for operation in operations.values() for status in operation["responses"]}
    assert "400" in {status for _, status in documented}
    assert {path for path, status in documented if status == "422"} == {"/api/orders/execute"}
    execute = paths["/api/orders/execute"]["post"]["responses"]["422"]
    assert "idempotency key" in execute["description"]
