"""The WebSocket message of one order event, and the order status it carries.

Consumes decoded events (live, from the fan-out) or read-model rows (catch-up); produces the
message of docs/DESIGN.md, encoded once with orjson:

    {"orderId", "status", "type", "seq", "timestamp" (ISO 8601 UTC), "data": {...}}

`status` is the order's status after the event, as its writer put it in the event's envelope
(`schemas.codec.EventEnvelope`): live from the record, on catch-up from the read model, which
stores the same. Nothing here folds it again. It is null only for an event written before the
envelope carried it (schema v1/v2) whose type alone does not tell it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from domain.orders.events import EVENT_TYPES
from domain.orders.status import TERMINAL, OrderStatus

EVENT_CLASSES: Final = {cls.__name__: cls for cls in EVENT_TYPES}


@dataclass(frozen=True, slots=True)
class OrderMessage:
    """One event of one order, ready to send; `text` is encoded once and shared."""

    order_id: str
    seq: int
    type: str
    status: OrderStatus | None
    text: str
    partition: int = -1  # Kafka coordinates of the event, -1 when unknown
    offset: int = -1
    produced_at_ms: int = 0  # the Kafka record's timestamp (live events only)
    tokens: frozenset[str] = frozenset()  # the order's token symbols and mints, if known
    owner: str | None = None  # the order's owner (API key id), if known (see api.live.recent)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def encode(order_id: str, status: OrderStatus | None, type_name: str, seq: int,
           occurred_at: datetime, data: dict[str, Any] | orjson.Fragment) -> str:
    """The message text; timestamps always in UTC, so live and catch-up copies are equal."""
    return orjson.dumps({
        "orderId": order_id,
        "status": None if status is None else status.value,
        "type": type_name,
        "seq": seq,
        "timestamp": occurred_at.astimezone(UTC).isoformat(),
        "data": data,
    }).decode()
