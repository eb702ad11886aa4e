"""The read side of the orders resource: GETs answered from the PostgreSQL read model.

Consumes the read model of docs/DESIGN.md (`orders`, `order_events`) through a psycopg
`AsyncConnectionPool` given as a FastAPI dependency; produces:

- `GET /api/orders/{id}`            the order now (404 if the read model does not know it);
- `GET /api/orders/{id}?asOf=T`     the order as it was at T: its events up to T, read from the
                                    audit log and folded with the pure `fold`;
- `GET /api/orders`                 newest first, filtered by status, orderType, tokenIn,
                                    tokenOut (symbol or mint), venue, createdFrom (inclusive),
                                    createdTo (exclusive); `limit` 1..500; keyset pagination on
                                    (created_at, order_id) behind an opaque `cursor`;
- `GET /api/orders/{id}/events`     the audit trail in seq order, with topic/partition/offset.

A bad parameter is a 400 naming it (`api.errors` body); so is an unknown one, since a
mistyped filter would otherwise silently list everything. Times without an offset are UTC.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, FieldError, InvalidRequest, invalid
from api.fields import Collector, resolve_token, shown
from api.order_ids import order_id_or_404
from api.order_views import AuditTrail, OrderPage, OrderView, audit_event, order_view
from domain.orders.evolve import fold
from domain.orders.status import OrderStatus, OrderType
from domain.quotes import SPLIT
from domain.tokens import TokenRegistry
from domain.venues import VENUES as REGISTERED_VENUES
from projections.event_json import EventReader
from projections.rows import ORDER_COLUMNS, order_row, row_mapping

PoolProvider = Callable[..., AsyncConnectionPool]
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
VENUES: Final = (*REGISTERED_VENUES.names, SPLIT)  # what an order's `venue` column can hold
_VENUE_DOC: Final = f"{', '.join(VENUES[:-1])} or {VENUES[-1]}."
_LIST_PARAMS: Final = frozenset(
    {"status", "orderType", "tokenIn", "tokenOut", "venue", "createdFrom", "createdTo",
     "limit", "cursor"}
)
_STATUS_DOC: Final = "One or more statuses: repeat the parameter or separate with commas."
_TOKEN_DOC: Final = "Symbol or mint."
_FROM: Final = "ISO 8601, inclusive; UTC when it has no offset."
_TO: Final = "ISO 8601, exclusive; UTC when it has no offset."
_LIMIT_DOC: Final = f"Orders per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
_CURSOR_DOC: Final = "`nextCursor` of the previous page."
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorBody, "description": "The read model has no such order."}
}


def queries_router(
    get_pool: PoolProvider, schema: str, registry: TokenRegistry | None = None
) -> APIRouter:
    """The GET routes of the orders resource, reading `schema` through the pool that the
    FastAPI dependency `get_pool` provides."""
    tokens = registry or TokenRegistry.default()
    reader = EventReader()
    statements = _Statements(schema)
    router = APIRouter(prefix="/api/orders", tags=["orders"])

    @router.get("", response_model=OrderPage, summary="List orders, newest first",
                responses=ERROR_RESPONSES)
    async def list_orders(
        request: Request,
        pool: AsyncConnectionPool = Depends(get_pool),  # noqa: B008 (resolved per app)
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
        found = Collector()
        found.errors.extend(_unknown_params(request, _LIST_PARAMS))
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
        where.compare("created_at", ">=", start)
        where.compare("created_at", "<", end)
        if after is not None:
            where.after(*after)
        rows = await _fetch(pool, statements.page(where), [*where.params, size + 1])
        page = [order_view(row) for row in rows[:size]]
        more = len(rows) > size
        return OrderPage(orders=page, next_cursor=_cursor(rows[size - 1]) if more else None)

    @router.get("/{order_id}", response_model=OrderView, summary="One order, now or as of a time",
                responses={**_NOT_FOUND, **ERROR_RESPONSES})
    async def get_order(
        request: Request,
        order_id: str,
        pool: AsyncConnectionPool = Depends(get_pool),  # noqa: B008 (resolved per app)
        as_of: Annotated[str | None, Query(alias="asOf", description="ISO 8601 time.")] = None,
    ) -> OrderView:
        _reject_unknown(request, frozenset({"asOf"}))
        canonical = order_id_or_404(order_id)
        moment = _instant("asOf", as_of)
        if moment is None:
            rows = await _fetch(pool, statements.one, (canonical,))
            if not rows:
                raise _unknown(canonical)
            return order_view(rows[0])
        events = await _fetch(pool, statements.events, (canonical,))
        before = _prefix_until(events, moment)
        if not before:
            raise ApiError(404, "not_found", f"order {canonical} did not exist at {moment}",
                           (FieldError("asOf", "is before the order was accepted"),))
        state = fold(reader.history(before))
        return order_view(row_mapping(order_row(state)), as_of=moment)

    @router.get("/{order_id}/events", response_model=AuditTrail,
                summary="The order's audit trail, with Kafka coordinates",
                responses={**_NOT_FOUND, **ERROR_RESPONSES})
    async def get_order_events(
        request: Request,
        order_id: str,
        pool: AsyncConnectionPool = Depends(get_pool),  # noqa: B008
    ) -> AuditTrail:
        _reject_unknown(request, frozenset())
        canonical = order_id_or_404(order_id)
        rows = await _fetch(pool, statements.events, (canonical,))
        if not rows:
            raise _unknown(canonical)
        return AuditTrail(order_id=canonical, events=[audit_event(row) for row in rows])

    return router


class ReadModelStatuses:
    """`api.deps.OrderStatuses` answered by the read model, so the edge can refuse a cancel
    that can no longer win (409) instead of sending it to the order agent."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._query = sql.SQL("select status from {} where order_id = %s").format(
            sql.Identifier(schema, "orders"))

    async def status_of(self, order_id: str) -> OrderStatus | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._query, (order_id,))
            row = await cur.fetchone()
        return OrderStatus(row[0]) if row else None


# --- SQL ----------------------------------------------------------------------------------


class _Statements:
    def __init__(self, schema: str) -> None:
        self._orders = sql.Identifier(schema, "orders")
        self._columns = sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS))
        self.one = sql.SQL("select {} from {} where order_id = %s").format(
            self._columns, self._orders)
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


def _unknown_params(request: Request, known: frozenset[str]) -> list[FieldError]:
    allowed = ", ".join(sorted(known)) or "none"
    return [FieldError(name, f"unknown parameter (allowed: {allowed})")
            for name in sorted(set(request.query_params) - known)]


def _reject_unknown(request: Request, known: frozenset[str]) -> None:
    unknown = _unknown_params(request, known)
    if unknown:
        raise InvalidRequest(unknown)


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
    return ApiError(404, "not_found", f"no order {order_id} in the read model",
                    (FieldError("orderId", "unknown order"),))


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
