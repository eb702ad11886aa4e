"""The envelope fields of the events one decision emits: ids, contiguous seqs, causation."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from domain.orders.ids import event_id


class EventMeta(TypedDict):
    """The fields every event carries (see `events.BaseEvent`), for `Event(**meta, ...)`."""

    event_id: str
    order_id: str
    seq: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str


class Stamper:
    """Hands out the metadata of the next event: seq continues from the state's."""

    __slots__ = ("_order_id", "_seq", "now", "_correlation_id", "_causation_id")

    def __init__(
        self, order_id: str, seq: int, *, now: datetime, correlation_id: str, causation_id: str
    ) -> None:
        self._order_id = order_id
        self._seq = seq
        self.now = now
        self._correlation_id = correlation_id
        self._causation_id = causation_id

    def __call__(self) -> EventMeta:
        self._seq += 1
        return EventMeta(
            event_id=event_id(self._order_id, self._seq),
            order_id=self._order_id,
            seq=self._seq,
            occurred_at=self.now,
            correlation_id=self._correlation_id,
            causation_id=self._causation_id,
        )
