"""The query API over a read model projected from real Kafka into real PostgreSQL: one order,
its audit trail, its state as of a time, the filtered and paginated list, and a 400 naming
every bad parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from api.order_views import order_view
from bench.order_histories import POLICY, HistoryMaker, interleaved
from tests.orders_support import execute_order
from domain.orders import (
    Event,
    ObservePrice,
    OrderAccepted,
    decide,
    evolve,
    fold,
    initial_state,
)
from domain.orders.status import OrderType, TimeInForce
from domain.tokens import SOL, USDC
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from projections.projector import ProjectorOptions, project
from readmodel.rows import order_row, row_mapping
from tests.integration.projection_support import produce

ORDERS = 240


@pytest.fixture
async def client(provisioned: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = bootstrap(provisioned, Replacements())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        yield http


@pytest.fixture
async def histories(provisioned: Settings) -> dict[str, list[Event]]:
    made = list(HistoryMaker(seed=31).orders(ORDERS))
    await produce(provisioned, interleaved(made))
    await project(provisioned, ProjectorOptions(until_end=True))
    return {history[0].order_id: history for history in made}


def view_json(history: list[Event], **extra: Any) -> dict[str, Any]:
    """What the API must answer for a history: the view of its fold, as JSON."""
    view = order_view(row_mapping(order_row(fold(history))), **extra)
    return view.model_dump(mode="json", by_alias=True)


def created(history: list[Event]) -> Any:
    return history[0].occurred_at


async def test_an_order_is_the_fold_of_its_events(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    for order_id, history in list(histories.items())[:25]:
        answer = await client.get(f"/api/orders/{order_id}")
        assert answer.status_code == 200
        assert answer.json() == view_json(history)


async def test_a_limit_order_shows_its_conditional_terms_and_a_market_order_nulls(
    client: httpx.AsyncClient, provisioned: Settings
) -> None:
    # HistoryMaker makes market orders only: the limit order comes from the pure aggregate.
    order_id, now = "0b5e2a4c-6f1d-4c3a-9e8b-2d7f1a3c5e90", datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    expires = now + timedelta(hours=6)
    state, limit_history = initial_state(order_id), list[Event]()
    for command in (
        execute_order(OrderType.LIMIT, command_id=f"{order_id}/execute", order_id=order_id,
                     issued_at=now, token_in=SOL.mint, token_out=USDC.mint,
                     token_in_symbol=SOL.symbol, token_out_symbol=USDC.symbol,
                     token_in_decimals=SOL.decimals, token_out_decimals=USDC.decimals,
                     amount_in=500_000_000, slippage_bps=100, limit_price=Decimal("101.25"),
                     time_in_force=TimeInForce.GTD, expires_at=expires),
        ObservePrice(command_id=f"{order_id}/observe", order_id=order_id,
                     issued_at=now + timedelta(seconds=1), best_price=Decimal("99.875")),
    ):
        for event in decide(state, command, now=command.issued_at, policy=POLICY):
            state = evolve(state, event)
            limit_history.append(event)
    market_history = HistoryMaker(seed=5).order()
    await produce(provisioned, interleaved([limit_history, market_history]))
    await project(provisioned, ProjectorOptions(until_end=True))

    limit = (await client.get(f"/api/orders/{order_id}")).json()
    assert limit == view_json(limit_history)
    assert limit["status"] == "waiting"
    assert (limit["limitPrice"], limit["timeInForce"]) == ("101.25", "GTD")
    assert datetime.fromisoformat(limit["expiresAt"]) == expires
    assert limit["bestPrice"] == "99.875"
    market = (await client.get(f"/api/orders/{market_history[0].order_id}")).json()
    assert market == view_json(market_history)
    terms = ("limitPrice", "timeInForce", "expiresAt", "trigger", "minLiquidityUsd",
             "maxPrice", "bestPrice", "bestPriceAt", "triggeredPrice")
    assert {key: market[key] for key in terms} == dict.fromkeys(terms)


async def test_amounts_are_exact_strings_in_human_and_base_units(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    sol_order = next(h for h in histories.values()
                     if isinstance(h[0], OrderAccepted) and h[0].terms.token_in == SOL.mint)
    body = (await client.get(f"/api/orders/{sol_order[0].order_id}")).json()
    assert body["amountIn"] == {"amount": "1.5", "baseUnits": "1500000000"}
    assert body["tokenIn"] == {"symbol": "SOL", "mint": SOL.mint, "decimals": 9}
    assert body["tokenOut"]["mint"] == USDC.mint
    assert isinstance(body["expectedAmountOut"]["baseUnits"], str)


async def test_an_unknown_order_is_404_and_so_is_a_malformed_id(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    unknown = await client.get("/api/orders/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    for path in ("/api/orders/not-an-id", "/api/orders/not-an-id/events"):
        malformed = await client.get(path)
        assert malformed.status_code == 404
        assert malformed.json()["error"] == "not_found"
        assert malformed.json()["detail"][0]["field"] == "orderId"
    assert (await client.get("/api/orders/00000000-0000-4000-8000-000000000000/events")
            ).status_code == 404


async def test_the_audit_trail_lists_every_event_in_seq_order_with_its_coordinates(
    client: httpx.AsyncClient, histories: dict[str, list[Event]], provisioned: Settings
) -> None:
    order_id, history = next((k, h) for k, h in histories.items() if len(h) > 8)
    trail = (await client.get(f"/api/orders/{order_id}/events")).json()
    events = trail["events"]
    assert [e["seq"] for e in events] == list(range(1, len(history) + 1))
    assert [e["type"] for e in events] == [type(e).__name__ for e in history]
    assert [e["eventId"] for e in events] == [e.event_id for e in history]
    assert {e["topic"] for e in events} == {provisioned.topics.events}
    assert len({e["partition"] for e in events}) == 1  # one order, one partition
    offsets = [e["offset"] for e in events]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert events[-1]["status"] == view_json(history)["status"]


async def test_as_of_a_time_the_order_is_the_fold_of_its_events_until_then(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    order_id, history = next((k, h) for k, h in histories.items() if len(h) > 8)
    for index, event in enumerate(history):
        if index + 1 < len(history) and history[index + 1].occurred_at == event.occurred_at:
            continue  # two events at one instant: "as of" that instant includes both
        moment = event.occurred_at + timedelta(microseconds=1)
        answer = await client.get(f"/api/orders/{order_id}",
                                  params={"asOf": moment.isoformat()})
        assert answer.status_code == 200
        assert answer.json() == view_json(history[:index + 1], as_of=moment)
    before = created(history) - timedelta(seconds=1)
    early = await client.get(f"/api/orders/{order_id}", params={"asOf": before.isoformat()})
    assert early.status_code == 404
    assert early.json()["detail"][0]["field"] == "asOf"


async def test_the_list_is_newest_first_and_pages_through_every_order_once(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "37", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/orders", params=params)).json()
        seen += [order["orderId"] for order in page["orders"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    newest_first = sorted(histories, key=lambda k: (created(histories[k]), k), reverse=True)
    assert seen == newest_first


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status": "confirmed"}, lambda v: v["status"] == "confirmed"),
        ({"status": "failed,cancelled"}, lambda v: v["status"] in ("failed", "cancelled")),
        ({"orderType": "market"}, lambda v: v["orderType"] == "market"),
        ({"tokenIn": "sol"}, lambda v: v["tokenIn"]["symbol"] == "SOL"),
        ({"tokenIn": SOL.mint}, lambda v: v["tokenIn"]["symbol"] == "SOL"),
        ({"tokenOut": "USDC"}, lambda v: v["tokenOut"]["symbol"] == "USDC"),
        ({"venue": "meteora"}, lambda v: v["venue"] == "meteora"),
        ({"status": "confirmed", "tokenIn": "USDT"},
         lambda v: v["status"] == "confirmed" and v["tokenIn"]["symbol"] == "USDT"),
    ],
)
async def test_filters_keep_exactly_the_matching_orders(
    client: httpx.AsyncClient, histories: dict[str, list[Event]], params: dict[str, str],
    keep: Any,
) -> None:
    views = [view_json(h) for h in histories.values()]
    expected = {v["orderId"] for v in views if keep(v)}
    assert expected, "the generated orders must exercise the filter"
    page = (await client.get("/api/orders", params={**params, "limit": "500"})).json()
    assert {order["orderId"] for order in page["orders"]} == expected


async def test_a_time_window_keeps_orders_created_in_it(
    client: httpx.AsyncClient, histories: dict[str, list[Event]]
) -> None:
    times = sorted(created(h) for h in histories.values())
    start, end = times[50], times[150]
    params = {"createdFrom": start.isoformat(), "createdTo": end.isoformat(), "limit": "500"}
    page = (await client.get("/api/orders", params=params)).json()
    assert len(page["orders"]) == sum(start <= t < end for t in times)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "confirmed,nope"}, "status"),
        ({"orderType": "iceberg"}, "orderType"),
        ({"tokenIn": "NOPE"}, "tokenIn"),
        ({"tokenOut": "So1111"}, "tokenOut"),
        ({"venue": "orca"}, "venue"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
        ({"createdTo": "2025-13-01"}, "createdTo"),
        ({"createdFrom": "2025-01-02", "createdTo": "2025-01-01"}, "createdTo"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"stauts": "confirmed"}, "stauts"),
    ],
)
async def test_a_bad_list_parameter_is_400_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await client.get("/api/orders", params=params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert [error["field"] for error in body["detail"]] == [field]


async def test_every_bad_parameter_is_named_in_one_answer(client: httpx.AsyncClient) -> None:
    params = {"status": "x", "venue": "y", "limit": "0"}
    answer = await client.get("/api/orders", params=params)
    assert answer.status_code == 400
    assert sorted(e["field"] for e in answer.json()["detail"]) == ["limit", "status", "venue"]


async def test_unknown_parameters_are_named_before_any_value_is_checked(
    client: httpx.AsyncClient,
) -> None:
    # An unknown name means the client speaks another version of the API: its values are
    # meaningless until the names are right (the policy of every route, api.query_params).
    answer = await client.get("/api/orders", params={"foo": "1", "bar": "2", "limit": "0"})
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert [e["field"] for e in detail] == ["bar", "foo"]
    assert "allowed: createdFrom, createdTo, cursor, limit" in detail[0]["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"asOf": "last tuesday"}, "asOf"), ({"as_of": "2025-01-01"}, "as_of")],
)
async def test_a_bad_order_parameter_is_400_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await client.get("/api/orders/00000000-0000-4000-8000-000000000000", params=params)
    assert answer.status_code == 400
    assert [error["field"] for error in answer.json()["detail"]] == [field]
