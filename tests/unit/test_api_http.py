"""The HTTP edge end to end in process, with a recording command sender instead of Kafka.

What only HTTP shows: status codes, the error body, idempotency replays and conflicts,
nothing sent on a bad request, 503 when Kafka does not acknowledge. The real broker is
exercised by tests/integration/test_api_commands.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from api.command_bus import CommandNotDelivered, CommandSender
from api.deps import MarketSource, OrderStatuses
from api.idempotency import order_id_for
from domain.market import Market
from domain.orders.commands import CancelOrder, EdgeCommand, ExecuteOrder
from domain.orders.status import OrderStatus
from domain.orders.terms import MarketTerms
from domain.tokens import SOL, USDC
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from marketdata.view import MarketView

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}
QUOTE = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[EdgeCommand] = []
        self.failure: Exception | None = None

    async def send(self, command: EdgeCommand) -> RecordMetadata:
        if self.failure is not None:
            raise self.failure
        self.sent.append(command)
        return RecordMetadata("t", 0, TopicPartition("t", 0), len(self.sent) - 1, -1, -1, 0)


class FixedStatuses:
    def __init__(self, status: OrderStatus | None) -> None:
        self.status = status

    async def status_of(self, order_id: str) -> OrderStatus | None:
        return self.status


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@asynccontextmanager
async def serving(
    sender: RecordingSender,
    *,
    market: MarketSource | None = None,
    statuses: OrderStatuses | None = None,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    @asynccontextmanager
    async def open_commands() -> AsyncIterator[CommandSender]:
        yield sender

    settings = Settings.model_validate({})
    # A fixed market: without one the app would follow the market topics of a real Kafka.
    fixed = market or MarketView(Market.default(settings.market_seed))
    app = bootstrap(
        settings,
        Replacements(open_commands=open_commands, market=fixed, statuses=statuses,
                     clock=lambda: NOW),
        read_side=False,  # the command edge alone: no read model, no live streams
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield client


@pytest.fixture
async def client(sender: RecordingSender) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(sender) as client:
        yield client


# --- execute -----------------------------------------------------------------------------------


async def test_an_order_is_produced_then_answered_201_pending(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    response = await client.post("/api/orders/execute", json={**ORDER, "slippageBps": 30})

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "orderId": body["orderId"],
        "status": "pending",
        "websocketUrl": f"ws://edge.test/api/orders/{body['orderId']}/stream",
        "success": True,
    }
    (command,) = sender.sent
    assert command == ExecuteOrder(
        command_id=command.command_id, order_id=body["orderId"], issued_at=NOW,
        accept_by=NOW + timedelta(milliseconds=Settings().command_accept_budget_ms),
        terms=MarketTerms(
            token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
            token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
            amount_in=1_500_000_000, slippage_bps=30, client_order_id=None,
        ),
    )


async def test_orders_without_a_key_get_different_ids(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/orders/execute", json=ORDER)
    second = await client.post("/api/orders/execute", json=ORDER)

    assert first.json()["orderId"] != second.json()["orderId"]


async def test_the_same_client_order_id_names_the_same_order_and_a_replay_answers_as_the_first(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    body = {**ORDER, "clientOrderId": "bot-1"}
    first = await client.post("/api/orders/execute", json=body)
    # Same terms in other words: still the same order.
    replay = await client.post("/api/orders/execute", content=b'{"tokenIn":"SOL","tokenOut":"USDC",'
                               b'"amount":1.50,"slippageTolerance":0.5,"clientOrderId":"bot-1"}')

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    assert first.json()["orderId"] == order_id_for("bot-1")
    assert len(sender.sent) == 1  # the replay produced nothing: the command is in Kafka already


async def test_the_idempotency_key_header_works_like_client_order_id(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    by_header = await client.post(
        "/api/orders/execute", json=ORDER, headers={"Idempotency-Key": "k-9"}
    )
    by_body = await client.post("/api/orders/execute", json={**ORDER, "clientOrderId": "k-9"})

    assert by_header.status_code == 201 and by_body.status_code == 201
    assert by_header.json()["orderId"] == by_body.json()["orderId"] == order_id_for("k-9")
    assert isinstance(sender.sent[0], ExecuteOrder) and sender.sent[0].terms.client_order_id == "k-9"


async def test_a_key_reused_with_other_terms_is_422_and_nothing_is_sent(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    await client.post("/api/orders/execute", json={**ORDER, "clientOrderId": "bot-2"})
    other_terms = {**ORDER, "amountIn": "2", "clientOrderId": "bot-2"}
    conflict = await client.post("/api/orders/execute", json=other_terms)

    assert conflict.status_code == 422
    assert conflict.json()["error"] == "idempotency_conflict"
    assert conflict.json()["detail"][0]["field"] == "clientOrderId"
    assert len(sender.sent) == 1


async def test_a_header_key_that_differs_from_client_order_id_is_rejected(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    response = await client.post("/api/orders/execute", json={**ORDER, "clientOrderId": "a"},
                                 headers={"Idempotency-Key": "b"})

    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "Idempotency-Key"
    assert sender.sent == []


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"-1"}', 400, "amountIn"),
        (b'{"tokenIn":"SOL","tokenOut":"SOL","amountIn":"1"}', 400, "tokenOut"),
        (b'{"tokenIn":"SOL","tokenOut":"USDC","amountln":"1"}', 400, "amountln"),
        (b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","slippage":0.9}', 400, "slippage"),
        (b'{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"1","orderType":"x"}', 400, "orderType"),
        (b'{"tokenIn":"SOL",', 400, "body"),
        (b"", 400, "body"),
        (b'{"tokenIn":"' + b"A" * 20_000 + b'"}', 413, "body"),
    ],
)
async def test_a_bad_request_gets_the_error_body_and_sends_nothing(
    client: httpx.AsyncClient, sender: RecordingSender, content: bytes, status: int, field: str
) -> None:
    response = await client.post("/api/orders/execute", content=content,
                                 headers={"content-type": "application/json"})

    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "message", "detail"}
    assert field in [detail["field"] for detail in body["detail"]]
    assert sender.sent == []


async def test_no_acknowledgement_from_kafka_is_504_outcome_unknown(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    sender.failure = CommandNotDelivered("no acknowledgement from Kafka within 4s")

    response = await client.post("/api/orders/execute", json={**ORDER, "clientOrderId": "k-504"})
    sender.failure = None
    retried = await client.post("/api/orders/execute", json={**ORDER, "clientOrderId": "k-504"})

    assert response.status_code == 504
    body = response.json()
    assert body["error"] == "outcome_unknown"
    assert body["orderId"] == order_id_for("k-504")
    assert body["acceptBy"] == "2025-06-01T12:00:03Z"  # NOW + the default 3 s budget
    # A failed send is not remembered: the retry produces, with the same order id.
    assert retried.status_code == 201 and retried.json()["orderId"] == order_id_for("k-504")


async def test_the_stream_url_follows_the_scheme_the_client_used(sender: RecordingSender) -> None:
    async with serving(sender) as client:
        client.base_url = httpx.URL("https://edge.test")
        response = await client.post("/api/orders/execute", json=ORDER)

    assert response.json()["websocketUrl"].startswith("wss://edge.test/api/orders/")


# --- cancel ------------------------------------------------------------------------------------


async def test_a_cancel_is_produced_and_answered_202(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    order_id = "0B6F2C52-6A53-4F7E-9A4B-2D1C8E0F9A11"

    response = await client.post(f"/api/orders/{order_id}/cancel", json={"reason": "changed"})

    assert response.status_code == 202
    assert response.json() == {"orderId": order_id.lower(), "status": "cancel_requested"}
    (command,) = sender.sent
    assert isinstance(command, CancelOrder)
    assert command.order_id == order_id.lower()
    assert (command.reason, command.issued_at) == ("changed", NOW)


async def test_a_cancel_needs_no_body(client: httpx.AsyncClient, sender: RecordingSender) -> None:
    response = await client.post(f"/api/orders/{order_id_for('x')}/cancel")

    assert response.status_code == 202
    assert isinstance(sender.sent[0], CancelOrder) and sender.sent[0].reason is None


async def test_a_cancel_of_something_that_is_not_an_order_id_is_404(
    client: httpx.AsyncClient, sender: RecordingSender
) -> None:
    response = await client.post("/api/orders/not-an-id/cancel")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["detail"][0]["field"] == "orderId"
    assert sender.sent == []


@pytest.mark.parametrize(
    "status", [OrderStatus.BUILDING, OrderStatus.SUBMITTED, OrderStatus.CONFIRMED]
)
async def test_a_cancel_the_read_model_knows_is_too_late_is_409(
    sender: RecordingSender, status: OrderStatus
) -> None:
    async with serving(sender, statuses=FixedStatuses(status)) as client:
        response = await client.post(f"/api/orders/{order_id_for('late')}/cancel")

    assert response.status_code == 409
    assert response.json()["error"] == "too_late_to_cancel"
    assert sender.sent == []


async def test_a_cancel_of_a_pending_order_goes_through(sender: RecordingSender) -> None:
    async with serving(sender, statuses=FixedStatuses(OrderStatus.PENDING)) as client:
        response = await client.post(f"/api/orders/{order_id_for('early')}/cancel")

    assert response.status_code == 202


# --- quote -------------------------------------------------------------------------------------


async def test_a_quote_shows_every_venue_the_winner_and_exact_amounts(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/quote", params=QUOTE)

    assert response.status_code == 200
    quote = response.json()
    assert quote["amountIn"] == {"amount": "1.5", "baseUnits": "1500000000"}
    assert {q["venue"] for q in quote["quotes"]} >= {"raydium", "meteora"}
    assert quote["venue"] in {"raydium", "meteora", "split"}
    assert quote["reason"]
    assert sum(int(leg["amountIn"]["baseUnits"]) for leg in quote["legs"]) == 1_500_000_000
    legs_out = sum(int(leg["amountOut"]["baseUnits"]) for leg in quote["legs"])
    assert legs_out == int(quote["amountOut"]["baseUnits"])
    assert any(q["selected"] for q in quote["quotes"])
    direct = next(q for q in quote["quotes"] if len(q["path"]) == 2)
    assert [t["symbol"] for t in direct["path"]] == ["SOL", "USDC"]
    assert direct["path"][0]["mint"] == SOL.mint
    assert "." not in direct["amountOut"]["baseUnits"]


async def test_a_multi_hop_quote_names_the_intermediate_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/quote", params={**QUOTE, "tokenIn": "RAY", "tokenOut": "SOL"})

    assert response.status_code == 200
    paths = [[t["symbol"] for t in q["path"]] for q in response.json()["quotes"]]
    assert all(len(path) == 3 for path in paths)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tokenIn": "DOGE", "tokenOut": "USDC", "amountIn": "1"}, "tokenIn"),
        ({"tokenIn": "SOL", "tokenOut": "wsol", "amountIn": "1"}, "tokenOut"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1e3"}, "amountIn"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.0000000001"}, "amountIn"),
        ({"tokenIn": "SOL", "tokenOut": "USDC"}, "amountIn"),
    ],
)
async def test_a_bad_quote_parameter_is_400_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/quote", params=params)

    assert response.status_code == 400
    assert field in [detail["field"] for detail in response.json()["detail"]]


async def test_no_route_is_404_with_a_reason(sender: RecordingSender) -> None:
    async with serving(sender, market=MarketView(Market.of([]))) as client:
        response = await client.get("/api/quote", params=QUOTE)

    assert response.status_code == 404
    assert response.json()["error"] == "no_route"
    assert "SOL" in response.json()["message"]


# --- health and docs ---------------------------------------------------------------------------


async def test_health_is_200_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert (response.status_code, response.json()["status"]) == (200, "ok")


async def test_the_openapi_document_shows_the_request_body_with_examples(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    body = spec["paths"]["/api/orders/execute"]["post"]["requestBody"]["content"]
    body = body["application/json"]
    assert {"canonical", "fraction", "percent"} <= set(body["examples"])
    aliases = {"amountIn", "amount", "slippageBps", "slippage", "slippageTolerance"}
    assert aliases <= set(body["schema"]["properties"])


# --- every other answer has the same body ------------------------------------------------------


async def test_an_unknown_path_is_404_in_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Not Found", "detail": []}


async def test_a_missing_query_parameter_is_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC"})

    assert response.status_code == 400
    assert response.json()["detail"] == [{"field": "amountIn", "message": "is required"}]


async def test_a_bug_is_a_500_in_the_error_body_without_internals(sender: RecordingSender) -> None:
    sender.failure = RuntimeError("secret internals")
    async with serving(sender, raise_app_exceptions=False) as client:
        response = await client.post("/api/orders/execute", json=ORDER)

    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal error", "detail": []}


# --- one policy for query parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/api/quote", {**QUOTE, "amount_in": "2"}),
        ("GET", "/health", {"verbose": "1"}),
        ("POST", "/api/orders/execute", {"dryRun": "true"}),
    ],
)
async def test_a_parameter_the_route_does_not_declare_is_400_naming_it(
    client: httpx.AsyncClient, sender: RecordingSender, method: str, path: str,
    params: dict[str, str],
) -> None:
    response = await client.request(method, path, params=params, json=ORDER)

    assert response.status_code == 400
    (unknown,) = set(params) - set(QUOTE)
    assert response.json()["detail"] == [
        {"field": unknown, "message": response.json()["detail"][0]["message"]}]
    assert response.json()["detail"][0]["message"].startswith("unknown parameter (allowed: ")
    assert not sender.sent  # nothing produced for a request the edge refused


async def test_the_allowed_parameters_are_the_declared_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/quote", params={**QUOTE, "amountln": "1"})

    message = response.json()["detail"][0]["message"]
    assert message == "unknown parameter (allowed: amountIn, tokenIn, tokenOut)"


def test_the_edges_dependencies_are_coroutines() -> None:
    """FastAPI runs a plain-function dependency in its thread pool: two thread hand-offs on
    every request for what is only a read of app.state."""
    from typing import get_args

    from starlette._utils import is_async_callable

    from api.auth.guard import Admin, Reader, Trader
    from api.deps import EdgeDep, LiveDep, ReadDep

    for alias in (EdgeDep, ReadDep, LiveDep, Reader, Trader, Admin):
        depends = get_args(alias)[1]
        assert is_async_callable(depends.dependency), depends.dependency
