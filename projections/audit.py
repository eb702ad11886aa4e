"""The audit check of an event stream: every order's seq is 1, 2, 3... with nothing after its end.

Consumes events in the order the event store holds them (per partition, by offset), each with
its Kafka coordinates; produces `Finding`s: gaps, events out of order, two different events
with one seq, events after a terminal one, undecodable records (all failures), and plain
redeliveries of an event already seen (reported, not a failure: consumers deduplicate them).
Pure: `replay` feeds it from Kafka, tests feed it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from domain.orders.events import TERMINAL_EVENTS, Event

FAILURES: Final = frozenset({"gap", "out_of_order", "conflict", "after_terminal", "undecodable"})


@dataclass(frozen=True, slots=True)
class Coordinates:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # one of FAILURES, or "duplicate"
    order_id: str | None
    seq: int | None
    at: Coordinates
    detail: str

    @property
    def is_failure(self) -> bool:
        return self.kind in FAILURES

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "orderId": self.order_id, "seq": self.seq,
                "topic": self.at.topic, "partition": self.at.partition,
                "offset": self.at.offset, "detail": self.detail}


@dataclass(slots=True)
class _Order:
    seen: dict[int, str] = field(default_factory=dict)  # seq -> event id
    last: int = 0
    ended: bool = False


class SeqAudit:
    """Feed every event of a stream; read `findings` at the end.

    `from_start`: the stream holds each order's whole history (replay of an order or of
    everything), so the first seq must be 1. A time range starts wherever it starts.
    """

    def __init__(self, *, from_start: bool) -> None:
        self.from_start = from_start
        self.findings: list[Finding] = []
        self.events = 0
        self._orders: dict[str, _Order] = {}

    @property
    def failed(self) -> bool:
        return any(finding.is_failure for finding in self.findings)

    @property
    def orders(self) -> int:
        return len(self._orders)

    def undecodable(self, at: Coordinates, error: str) -> None:
        self.findings.append(Finding("undecodable", None, None, at, error))

    def add(self, event: Event, at: Coordinates) -> None:
        self.events += 1
        order = self._orders.setdefault(event.order_id, _Order())
        seq, known = event.seq, order.seen.get(event.seq)
        if known is not None:
            kind = "duplicate" if known == event.event_id else "conflict"
            self._report(kind, event, at, f"seq {seq} seen before as event {known}")
            return
        first = not order.seen
        expected = order.last + 1
        if seq < order.last:
            self._report("out_of_order", event, at, f"seq {seq} after seq {order.last}")
        elif order.ended:
            self._report("after_terminal", event, at, f"{type(event).__name__} after the end")
        elif seq != expected and not (first and not self.from_start):
            self._report("gap", event, at, f"expected seq {expected}, got {seq}")
        order.seen[seq] = event.event_id
        order.last = max(order.last, seq)
        order.ended = order.ended or isinstance(event, TERMINAL_EVENTS)

    def _report(self, kind: str, event: Event, at: Coordinates, detail: str) -> None:
        self.findings.append(Finding(kind, event.order_id, event.seq, at, detail))
