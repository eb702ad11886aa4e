"""The read model's rows as values: an order's folded state as its `orders` row, an event as
its `order_events` row. Pure: no I/O.

Consumes `OrderState`s (from the pure `evolve`) and events with their Kafka coordinates;
produces tuples in the column order of migrations 0003 and 0004, ready for COPY.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from domain.orders.amounts import executed_price
from domain.orders.events import Event
from domain.orders.schedule import due_at
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus
from domain.orders.terms import PARENT_TERMS, LimitTerms, SniperTerms
from domain.quotes import RoutingDecision
from schemas.records import json_converter

# The per-status columns in table order (pending_at ... expired_at, waiting_at last).
_ROW_STATUS_ORDER: Final = (
    OrderStatus.PENDING, OrderStatus.ROUTING, OrderStatus.BUILDING, OrderStatus.SUBMITTED,
    OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED,
    OrderStatus.WAITING,
)  # fmt: skip
STATUS_COLUMNS: Final = {status: f"{status.value}_at" for status in _ROW_STATUS_ORDER}

ORDER_COLUMNS: Final = (
    "order_id", "seq", "status", "order_type", "token_in", "token_out",
    "token_in_symbol", "token_out_symbol", "token_in_decimals", "token_out_decimals",
    "amount_in", "slippage_bps", "client_order_id", "venue", "expected_amount_out",
    "min_amount_out", "amount_out", "executed_price", "signature", "attempts",
    "failure_code", "failure_reason", "routing", "created_at", "updated_at",
    "pending_at", "routing_at", "building_at", "submitted_at", "confirmed_at",
    "failed_at", "cancelled_at", "expired_at", "waiting_at",
    # 0004: the conditional terms (null for a market order) and what the waiting order saw.
    "limit_price", "time_in_force", "expires_at", "trigger", "min_liquidity_usd",
    "max_price", "best_price", "best_price_at", "triggered_price",
    # 0005: the API key that placed the order (null before auth).
    "owner",
    # 0007: a slice's parent; a parent's progress (twap, dca).
    "parent_id", "progress",
)  # fmt: skip
EVENT_COLUMNS: Final = (
    "event_id", "order_id", "seq", "type", "status", "payload", "occurred_at",
    "topic", "partition", "offset",
)  # fmt: skip

OrderRow = tuple[Any, ...]
EventRow = tuple[Any, ...]
_DECISION_JSON: Final = json_converter(RoutingDecision)


class IncompleteState(ValueError):
    """A state without terms or status cannot be a row (the order was never accepted)."""


def decision_json(decision: RoutingDecision) -> str:
    """The decision as stored in `orders.routing`: the same JSON view as in RouteSelected."""
    return orjson.dumps(_DECISION_JSON(decision)).decode()


def order_row(state: OrderState, routing: str | None = None) -> OrderRow:
    """The `orders` row of `state` in ORDER_COLUMNS order; `routing` is the decision's JSON
    when the caller has it already (it is the one costly column)."""
    terms, status = state.terms, state.status
    if terms is None or status is None or not state.status_history:
        raise IncompleteState(f"order {state.order_id} has not been accepted")
    decision = state.decision
    if decision is not None and routing is None:
        routing = decision_json(decision)
    entered = {s: at for s, at in state.status_history}  # the last time each was entered
    # The columns of terms the order type does not take stay null (a market order's GTC too).
    limit = terms if isinstance(terms, LimitTerms) else None
    sniper = terms if isinstance(terms, SniperTerms) else None
    waiting = limit or sniper
    return (
        state.order_id, state.seq, status.value, terms.order_type.value,
        terms.token_in, terms.token_out, terms.token_in_symbol, terms.token_out_symbol,
        terms.token_in_decimals, terms.token_out_decimals, terms.amount_in,
        terms.slippage_bps, terms.client_order_id,
        decision.venue if decision else None,
        decision.amount_out if decision else None,
        state.min_amount_out, state.amount_out, state.executed_price, state.signature,
        state.attempt, state.reason_code, state.reason, routing,
        state.status_history[0][1], state.updated_at,
        *(entered.get(s) for s in _ROW_STATUS_ORDER),
        limit.limit_price if limit else None,
        waiting.time_in_force.value if waiting else None, terms.deadline,
        sniper.trigger.value if sniper else None,
        sniper.min_liquidity_usd if sniper else None, sniper.max_price if sniper else None,
        state.best_price, state.best_price_at, state.triggered_price,
        state.owner,
        state.parent_id, progress_json(state),
    )  # fmt: skip


def progress_json(state: OrderState) -> str | None:
    """A parent's (twap, dca) progress as stored in `orders.progress`; None for any other
    order. Amounts are base-unit strings (as everywhere in JSON); `averagePrice` is tokenOut
    per 1 tokenIn over the confirmed slices (null before the first)."""
    progress, terms = state.parent, state.terms
    if progress is None or not isinstance(terms, PARENT_TERMS):
        return None
    filled_in, filled_out = progress.amount_in_filled, progress.amount_out
    average = None
    if filled_in > 0:
        average = format(executed_price(filled_in, filled_out,
                                        decimals_in=terms.token_in_decimals,
                                        decimals_out=terms.token_out_decimals), "f")
    children = [{"childId": c.child_id, "slice": c.slice_index, "amountIn": str(c.amount_in),
                 "status": c.status.value if c.status else None,
                 "amountOut": None if c.amount_out is None else str(c.amount_out)}
                for c in progress.children]
    live = sum(1 for c in progress.children if c.live)
    return orjson.dumps({
        "slices": len(progress.slices),
        "intervalS": terms.interval_s,
        "minSlicePrice": None if terms.min_slice_price is None else format(terms.min_slice_price, "f"),
        "maxSlicePrice": None if terms.max_slice_price is None else format(terms.max_slice_price, "f"),
        "released": progress.released,
        "skipped": progress.skipped,
        "remaining": 0 if progress.cancel_requested else len(progress.slices) - progress.next_slice,
        "filled": sum(1 for c in progress.children if c.filled),
        "live": live,
        "cancelRequested": progress.cancel_requested,
        "amountInFilled": str(filled_in),
        "amountOut": str(filled_out),
        "averagePrice": average,
        "nextSliceAt": None if progress.scheduled_done else
        due_at(progress.started_at, terms.interval_s, progress.next_slice).isoformat(),
        "children": children,
    }).decode()


def event_row(
    event: Event, status: OrderStatus, payload: str, topic: str, partition: int, offset: int
) -> EventRow:
    """The `order_events` row of `event` (`payload` is `Codec.event_to_json` as JSON text)."""
    return (
        event.event_id, event.order_id, event.seq, type(event).__name__, status.value,
        payload, event.occurred_at, topic, partition, offset,
    )  # fmt: skip


def row_mapping(row: Sequence[Any]) -> dict[str, Any]:
    """An `orders` tuple as a column -> value mapping."""
    return dict(zip(ORDER_COLUMNS, row, strict=True))

