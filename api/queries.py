"""The read side of the orders resource: GETs answered from the PostgreSQL read model.

Consumes the read model of docs/DESIGN.md (`orders`, `order_events`) through the process's
one psycopg pool (`ReadDep`) and the token registry (`EdgeDep`); produces:

- `GET /api/orders/{id}`            the order now (404 if the read model does not know it);
- `GET /api/orders/{id}?asOf=T`     the order as it was at T: its events up to T, read from the
                                    audit log and folded with the pure `fold`;
- `GET /api/orders`                 newest first, filtered by status, orderType, tokenIn,
                                    tokenOut (symbol or mint), venue, createdFrom (inclusive),
                                    createdTo (exclusive); `limit` 1..500; keyset pagination on
                                    (created_at, order_id) behind an opaque `cursor`;
- `GET /api/orders/{id}/events`     the audit trail in seq order, with topic/partition/offset.

Each needs a key with the read scope (`api.auth.guard`) and shows only the caller's orders:
another owner's order is a 404, exactly as one that does not exist; an admin sees all.

A bad parameter is a 400 naming it (`api.errors` body); so is an unknown one (the app-wide
policy of `api.query_params`: a mistyped filter would otherwise silently list everything).
While PostgreSQL is out of reach every route answers 503 with Retry-After (`api.errors`).
Times without an offset are UTC.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Final

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Query
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.auth.guard import Reader
from api.auth.keys import Principal
from api.deps import EdgeDep, ReadDep, ReadSide
from api.errors import (
    ERROR_RESPONSES,
    READ_MODEL_DOWN,
    ApiError,
    ErrorBody,
    FieldError,
    InvalidRequest,
    invalid,
)
from api.fields import Collector, resolve_token, shown
from api.order_ids import not_found, order_id_or_404
from api.order_views import (
    AuditTrail,
    ChainStatus,
    OrderPage,
    OrderView,
    audit_event,
    order_view,
)
from domain.orders.evolve import fold
from domain.orders.status import OrderStatus, OrderType
from domain.quotes import SPLIT
from domain.tokens import TokenRegistry
from domain.venues import VENUES as REGISTERED_VENUES
from readmodel.event_json import EventReader
from readmodel.rows import ORDER_COLUMNS, order_row, row_mapping

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
VENUES: Final = (*REGISTERED_VENUES.names, SPLIT)  # what an order's `venue` column can hold
_VENUE_DOC: Final = f"{', '.join(VENUES[:-1])} or {VENUES[-1]}."
_STATUS_DOC: Final = "One or more statuses: repeat the parameter or separate with commas."
_TOKEN_DOC: Final = "Symbol or mint."
_FROM: Final = "ISO 8601, inclusive; UTC when it has no offset."
_TO: Final = "ISO 8601, exclusive; UTC when it has no offset."
_LIMIT_DOC: Final = f"Orders per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
_CURSOR_DOC: Final = "`nextCursor` of the previous page."
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorBody, "description": "The read model has no such order."}
}
_READ_ERRORS: Final = {**ERROR_RESPONSES, **READ_MODEL_DOWN}

router = APIRouter(prefix="/api/orders", tags=["orders"])


@router.get("", response_model=OrderPage, summary="List orders, newest first",
            responses=_READ_ERRORS)
async def list_orders(
    read: ReadDep,
    edge: EdgeDep,
    who: Reader,
    status: Annotated[list[str] | None, Query(description=_STATUS_DOC)] = None,
    order_type: Annotated[str | None, Query(alias="orderType")] = None,
    token_in: Annotated[str | None, Query(alias="tokenIn", description=_TOKEN_DOC)] = None,
    token_out: Annotated[str | None, Query(alias="tokenOut", description=_TOKEN_DOC)] = None,
    venue: Annotated[str | None, Query(description=_VENUE_DOC)] = None,
    created_from: Annotated[str | None, Query(alias="createdFrom", description=_FROM)] = None,
    created_to: Annotated[str | None, Query(alias="createdTo", description=_TO)] = None,
    limit: Annotated[str | None, Query(description=_LIMIT_DOC)] = None,
    cursor: Annotated[str | None, Query(description=_CURSOR_DOC)] = None,
) -> OrderPage:
    tokens = edge.registry
    found = Collector()
    where = _Where()
    found.check(lambda: where.any_of("status", _statuses(status or [])))
    found.check(lambda: where.equals("order_type", _choice("orderType", order_type, _TYPES)))
    where.equals("token_in", found.check(lambda: _mint("tokenIn", token_in, tokens)))
    where.equals("token_out", found.check(lambda: _mint("tokenOut", token_out, tokens)))
    found.check(lambda: where.equals("venue", _choice("venue", venue, VENUES)))
    start = found.check(lambda: _instant("createdFrom", created_from))
    end = found.check(lambda: _instant("createdTo", created_to))
    after = found.check(lambda: _decode_cursor(cursor))
    size = found.check(lambda: _limit(limit)) or DEFAULT_LIMIT
    if start and end and end <= start:
        found.errors.append(FieldError("createdTo", "must be after createdFrom"))
    if found.errors:
        raise InvalidRequest(found.errors)
    if not who.sees(None):  # not an admin: its own orders only
        where.equals("owner", who.key_id)
    where.compare("created_at", ">=", start)
    where.compare("created_at", "<", end)
    if after is not None:
        where.after(*after)
    statements = _statements(read.schema)
    rows = await _fetch(read.pool, statements.page(where), [*where.params, size + 1])
    page = [order_view(row) for row in rows[:size]]
    more = len(rows) > size
    return OrderPage(orders=page, next_cursor=_cursor(rows[size - 1]) if more else None)


@router.get("/{order_id}", response_model=OrderView, summary="One order, now or as of a time",
            responses={**_NOT_FOUND, **_READ_ERRORS})
async def get_order(
    order_id: str,
    read: ReadDep,
    who: Reader,
    as_of: Annotated[str | None, Query(alias="asOf", description="ISO 8601 time.")] = None,
) -> OrderView:
    canonical = order_id_or_404(order_id)
    moment = _instant("asOf", as_of)
    statements = _statements(read.schema)
    if moment is None:
        rows = await _fetch(read.pool, statements.one, (canonical,))
        if not rows or not who.sees(rows[0]["owner"]):
            raise _unknown(canonical)
        return order_view(rows[0])
    await _check_owner(read, who, canonical)
    events = await _fetch(read.pool, statements.events, (canonical,))
    before = _prefix_until(events, moment)
    if not before:
        raise ApiError(404, "not_found", f"order {canonical} did not exist at {moment}",
                       (FieldError("asOf", "is before the order was accepted"),))
    state = fold(_event_reader().history(before))
    return order_view(row_mapping(order_row(state)), as_of=moment)


@router.get("/{order_id}/events", response_model=AuditTrail,
            summary="The order's audit trail, with Kafka coordinates",
            responses={**_NOT_FOUND, **_READ_ERRORS})
async def get_order_events(
    order_id: str,
    read: ReadDep,
    who: Reader,
    verify: Annotated[bool, Query(description="Recompute the order's hash chain from "
                                              "Kafka (slower: reads its partition).")] = False,
) -> AuditTrail:
    canonical = order_id_or_404(order_id)
    await _check_owner(read, who, canonical)
    rows = await _fetch(read.pool, _statements(read.schema).events, (canonical,))
    if not rows:
        raise _unknown(canonical)
    chain = await _verify_chain(read, canonical, rows) if verify else None
    return AuditTrail(order_id=canonical, events=[audit_event(row) for row in rows],
                      chain=chain)


async def _verify_chain(read: ReadSide, order_id: str,
                        rows: list[dict[str, Any]]) -> ChainStatus:
    if read.chains is None:
        raise ApiError(503, "unavailable", "this edge cannot read the event store")
    first = min(rows, key=lambda row: row["offset"])
    try:
        verdict = await read.chains.verify(order_id, first["partition"], first["offset"])
    except KafkaError as error:
        raise ApiError(503, "unavailable", f"the event store is out of reach: {error}",
                       headers={"Retry-After": "1"}) from error
    return ChainStatus.model_validate(verdict.as_json())


async def _check_owner(read: ReadSide, who: Principal, order_id: str) -> None:
    """404 unless the caller may see the order (its owner, or an admin)."""
    if who.sees(None):
        return
    rows = await _fetch(read.pool, _statements(read.schema).owner, (order_id,))
    if not rows or not who.sees(rows[0]["owner"]):
        raise _unknown(order_id)


@cache
def _event_reader() -> EventReader:
    """Built on first use, then shared: it holds one JSON reader per event type."""
    return EventReader()


# --- SQL ----------------------------------------------------------------------------------


@cache
def _statements(schema: str) -> _Statements:
    return _Statements(schema)


class _Statements:
    def __init__(self, schema: str) -> None:
        self._orders = sql.Identifier(schema, "orders")
        self._columns = sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS))
        self.one = sql.SQL("select {} from {} where order_id = %s").format(
            self._columns, self._orders)
        self.owner = sql.SQL("select owner from {} where order_id = %s").format(self._orders)
        self.events = sql.SQL(
            "select event_id, order_id, seq, type, status, payload, occurred_at, topic, "
            "partition, \"offset\" from {} where order_id = %s order by seq"
        ).format(sql.Identifier(schema, "order_events"))

    def page(self, where: _Where) -> sql.Composed:
        """A page of orders, newest first; the last parameter is the page size."""
        return sql.SQL(
            "select {} from {} where {} order by created_at desc, order_id desc limit %s"
        ).format(self._columns, self._orders, where.clause())


class _Where:
    """The conditions of a list query and their parameters, composed safely."""

    def __init__(self) -> None:
        self.parts: list[sql.Composable] = []
        self.params: list[Any] = []

    def equals(self, column: str, value: Any) -> None:
        self.compare(column, "=", value)

    def any_of(self, column: str, values: Sequence[str]) -> None:
        if values:
            self.parts.append(sql.SQL("{} = any(%s)").format(sql.Identifier(column)))
            self.params.append(list(values))

    def compare(self, column: str, operator: str, value: Any) -> None:
        if value is not None:
            self.parts.append(sql.SQL("{} " + operator + " %s").format(sql.Identifier(column)))
            self.params.append(value)

    def after(self, created_at: datetime, order_id: str) -> None:
        """Keyset pagination: the rows strictly after the last one of the previous page."""
        self.parts.append(sql.SQL("(created_at, order_id) < (%s, %s)"))
        self.params.extend((created_at, order_id))

    def clause(self) -> sql.Composable:
        return sql.SQL(" and ").join(self.parts) if self.parts else sql.SQL("true")


async def _fetch(
    pool: AsyncConnectionPool, query: sql.Composed, params: Sequence[Any]
) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


# --- parameters ---------------------------------------------------------------------------

_TYPES: Final = tuple(t.value for t in OrderType)
_STATUSES: Final = tuple(s.value for s in OrderStatus)


def _statuses(given: list[str]) -> list[str]:
    wanted = [part.strip() for text in given for part in text.split(",") if part.strip()]
    for status in wanted:
        _choice("status", status, _STATUSES)
    return wanted


def _choice(field: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is not None and value not in allowed:
        raise invalid(field, f"{shown(value)} is not one of {', '.join(allowed)}")
    return value


def _mint(field: str, text: str | None, tokens: TokenRegistry) -> str | None:
    return None if text is None else resolve_token(field, text, tokens).mint


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise invalid("limit", f"{shown(text)} is not a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _instant(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(field, f"{shown(text)} is not an ISO 8601 time "
                             "(e.g. 2025-01-06T09:30:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unknown(order_id: str) -> ApiError:
    return not_found(order_id)


def _prefix_until(events: list[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    """The events up to `moment`, in seq order, stopping at the first later one (a history
    with a hole in it cannot be folded)."""
    prefix = []
    for row in events:
        if row["occurred_at"] > moment:
            break
        prefix.append(row)
    return prefix


def _cursor(row: dict[str, Any]) -> str:
    raw = orjson.dumps([row["created_at"].isoformat(), row["order_id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = orjson.loads(raw)
        return datetime.fromisoformat(created_at), str(order_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid("cursor", "is not a cursor this API gave out (use nextCursor)") from None
