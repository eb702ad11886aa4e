"""Kafka record headers: every name declared here once, with the functions that build and read them.

Consumes what a producer is about to send (an order event, command, work item or market
event) and the current `telemetry.context` (trace, correlation id); produces the header list
every record of the engine carries, so a consumer can route and trace without decoding the
Avro value. Readers get `RecordHeaders.parse`, which tolerates records with no headers at all
(everything written before headers existed) and ignores headers it does not know.

The names follow CloudEvents' Kafka binary mode (`ce_*`, `content-type`) where one exists, and
W3C Trace Context for `traceparent`. To add a header: a name constant, a field of
`RecordHeaders`, one line in `build` and one in `parse`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Union

from domain.market_events import BaseMarketEvent
from domain.orders.commands import BaseCommand
from domain.orders.events import BaseEvent
from domain.work import ExecuteSwap, QuoteRoute
from telemetry.context import TraceContext, current

# --- the names ---------------------------------------------------------------------------
TYPE: Final = "ce_type"  # the record's type: OrderAccepted, ExecuteOrder, QuoteRoute, PriceTick…
ID: Final = "ce_id"  # event id / command id; derived for work items, fresh for the rest
SOURCE: Final = "ce_source"  # the producing process: /oee/api, /oee/worker, /oee/feed
SPEC_VERSION: Final = "ce_specversion"
TIME: Final = "ce_time"  # RFC 3339: occurred / issued; a work item's production time
CONTENT_TYPE: Final = "content-type"
ORDER_ID: Final = "oee_order_id"
CORRELATION_ID: Final = "oee_correlation_id"
TRACEPARENT: Final = "traceparent"

CE_SPEC_VERSION: Final = "1.0"
AVRO: Final = "application/avro"

Subject = Union[BaseEvent, BaseCommand, QuoteRoute, ExecuteSwap, BaseMarketEvent]
RawHeaders = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class RecordHeaders:
    """What a record's headers say; None where a header is absent."""

    type: str | None = None
    id: str | None = None
    source: str | None = None
    time: str | None = None
    order_id: str | None = None
    correlation_id: str | None = None
    trace: TraceContext | None = None

    @classmethod
    def parse(cls, headers: RawHeaders) -> RecordHeaders:
        found = _as_dict(headers)
        return cls(type=found.get(TYPE), id=found.get(ID), source=found.get(SOURCE),
                   time=found.get(TIME), order_id=found.get(ORDER_ID),
                   correlation_id=found.get(CORRELATION_ID),
                   trace=TraceContext.parse(found.get(TRACEPARENT)))


def build(subject: Subject, source: str) -> list[tuple[str, bytes]]:
    """The headers of a record carrying `subject`, produced by `source`, in the current
    context: its `traceparent` names the current span (the request's, the record's being
    handled) as the parent of whatever consumes it; outside any trace it starts one."""
    work = current()
    order_id = getattr(subject, "order_id", None)
    correlation = getattr(subject, "correlation_id", None) or (
        work.correlation_id if order_id is not None and order_id == work.order_id else None)
    trace = work.trace or TraceContext.new()
    pairs: list[tuple[str, str | None]] = [
        (TYPE, type(subject).__name__),
        (ID, _id_of(subject)),
        (SOURCE, source),
        (SPEC_VERSION, CE_SPEC_VERSION),
        (TIME, _time_of(subject)),
        (CONTENT_TYPE, AVRO),
        (ORDER_ID, order_id),
        (CORRELATION_ID, correlation),
        (TRACEPARENT, trace.traceparent),
    ]
    return [(name, value.encode()) for name, value in pairs if value is not None]


def _id_of(subject: Subject) -> str:
    if isinstance(subject, BaseEvent | BaseMarketEvent):
        return subject.event_id
    if isinstance(subject, BaseCommand):
        return subject.command_id
    if isinstance(subject, QuoteRoute | ExecuteSwap):  # the same item re-driven keeps its id
        return f"{subject.order_id}/{subject.attempt}/{type(subject).__name__}"
    return str(uuid.uuid4())


def _time_of(subject: Subject) -> str:
    """The record's own time; a work item has none, so it is stamped as it is produced."""
    at: datetime | None = getattr(subject, "occurred_at", None) or getattr(
        subject, "issued_at", None)
    return (at or datetime.now(UTC)).isoformat()


def _as_dict(headers: RawHeaders) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, bytes | bytearray):
            found[name] = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, str):
            found[name] = value
    return found
