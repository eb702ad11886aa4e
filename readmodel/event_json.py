"""Events back from the JSON the audit log keeps.

Consumes `order_events.payload` (= `Codec.event_to_json(event)`) plus the envelope columns
stored beside it; produces the domain values again (through `schemas.json_reader`, the
inverse of the codec's JSON view), so the pure `fold` can replay an order from PostgreSQL
(`asOf`), and the projector can pick up the fold of an order it does not hold in memory.

The envelope's tracing ids (correlation, causation) are not in the audit log: events read
back carry empty ones. No fold reads them into anything the read model shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from domain.orders.events import EVENT_TYPES, BaseEvent, Event
from schemas.json_reader import UnreadableJson, json_reader

_ENVELOPE: Final = frozenset(field.name for field in dataclasses.fields(BaseEvent))


class UnreadablePayload(ValueError):
    """A stored payload that does not fit its event type (a bug, or a foreign row)."""


class EventReader:
    """Rebuilds events from their audit-log rows; built once, used for many rows."""

    def __init__(self) -> None:
        self._by_name = {
            cls.__name__: (cls, json_reader(cls, skip=_ENVELOPE)) for cls in EVENT_TYPES
        }

    def event(
        self,
        type_name: str,
        payload: Mapping[str, Any],
        *,
        event_id: str,
        order_id: str,
        seq: int,
        occurred_at: datetime,
    ) -> Event:
        found = self._by_name.get(type_name)
        if found is None:
            raise UnreadablePayload(f"unknown event type {type_name!r}")
        cls, read = found
        try:
            fields = read(payload, f"{type_name} {order_id}/{seq}")
        except UnreadableJson as error:
            raise UnreadablePayload(str(error)) from error
        event: Event = cls(
            event_id=event_id,
            order_id=order_id,
            seq=seq,
            occurred_at=occurred_at,
            correlation_id="",
            causation_id="",
            **fields,
        )
        return event

    def history(self, rows: Iterable[Mapping[str, Any]]) -> list[Event]:
        """The events of `order_events` rows (type, payload, event_id, order_id, seq,
        occurred_at), in the order given."""
        return [
            self.event(row["type"], row["payload"], event_id=row["event_id"],
                       order_id=row["order_id"], seq=row["seq"], occurred_at=row["occurred_at"])
            for row in rows
        ]

