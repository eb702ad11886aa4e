"""The stream worker's own Prometheus metrics: what THIS process decided, handled and produced.

Consumes the events the order writer appends (through `MeteredOutbox`, a decorator of the
`Outbox` port), the states of the partitions it loads, and the records its agents receive;
produces counters and histograms in the process's `CollectorRegistry`. Only per-process
facts: summed over the workers of a group they give the engine's totals, never twice (each
order's events are appended by the one worker holding its partition).

- `oee_worker_records_total{topic}`: records handed to an agent;
- `oee_order_events_total{type}`: events appended to the store;
- `oee_order_transitions_total{status}`: status changes, by the status entered;
- `oee_order_lifecycle_seconds{outcome}` (histogram): accepted -> terminal;
- `oee_order_stage_seconds{status}` (histogram): time spent in a status before leaving it
  (routing = quote latency, building -> submitted, submitted = confirmation latency, ...);
- `oee_dead_letters_total{topic}`: records parked in the dead-letter topic.

Times are the events' own (`occurred_at`), so a history re-decided after a crash measures
the same way. An order whose earlier statuses this process never saw (its partition moved
here and the fold lost nothing) is still measured: the fold gives the times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram

from domain.orders.commands import Command
from domain.orders.events import Event
from domain.orders.state import OrderState
from domain.orders.status import TERMINAL, OrderStatus
from domain.work import Work
from streams.ports import Delivery, Outbox

LIFECYCLE_BUCKETS: Final = (0.25, 0.5, 1, 2, 2.5, 3, 3.5, 4, 5, 7.5, 10, 15, 30, 60, 120, 300,
                            900, 3600)
STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2, 2.5,
                        3, 4, 5, 10, 30, 60, 300, 3600)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.records = Counter("oee_worker_records", "Records handed to an agent, by topic.",
                               ["topic"], registry=registry)
        self.events = Counter("oee_order_events", "Events appended to the event store, by type.",
                              ["type"], registry=registry)
        self.transitions = Counter("oee_order_transitions",
                                   "Status changes decided, by the status entered.",
                                   ["status"], registry=registry)
        self.lifecycle = Histogram("oee_order_lifecycle_seconds",
                                   "From OrderAccepted to the terminal event, by outcome.",
                                   ["outcome"], buckets=LIFECYCLE_BUCKETS, registry=registry)
        self.stages = Histogram("oee_order_stage_seconds",
                                "Time an order spent in a status before leaving it.",
                                ["status"], buckets=STAGE_BUCKETS, registry=registry)
        self.dead_letters = Counter("oee_dead_letters", "Records dead-lettered, by source topic.",
                                    ["topic"], registry=registry)
        self.handed_locally = Counter(
            "oee_worker_handed_locally", "Work items this worker's stage started as soon as "
            "their record was acknowledged, without waiting to consume it, by stage topic.",
            ["topic"], registry=registry)
        # Live orders of this worker: their status, when they entered it, when accepted.
        self._open: dict[str, tuple[OrderStatus, datetime, datetime]] = {}

    def loaded(self, state: OrderState, command: Command | None) -> None:
        """The writer's observer: a state of a loaded partition (command None) is where its
        order stands; the states after decisions are measured from the events instead."""
        if command is not None or state.status is None or state.status in TERMINAL:
            return
        entered, accepted = state.entered_at(state.status), state.entered_at(OrderStatus.PENDING)
        if entered is not None and accepted is not None:
            self._open[state.order_id] = (state.status, entered, accepted)

    def appended(self, events: Sequence[Event], statuses: Sequence[OrderStatus]) -> None:
        for event, status in zip(events, statuses, strict=True):
            self.events.labels(type(event).__name__).inc()
            self._moved(event.order_id, status, event.occurred_at)

    def _moved(self, order_id: str, status: OrderStatus, at: datetime) -> None:
        before = self._open.get(order_id)
        if before is None:
            if status is not OrderStatus.PENDING:
                return  # an order this process never saw open (its fold was not loaded here)
            self.transitions.labels(status.value).inc()
            self._open[order_id] = (status, at, at)
            return
        previous, entered, accepted = before
        if previous is status:
            return
        self.transitions.labels(status.value).inc()
        self.stages.labels(previous.value).observe((at - entered).total_seconds())
        if status in TERMINAL:
            self.lifecycle.labels(status.value).observe((at - accepted).total_seconds())
            del self._open[order_id]
        else:
            self._open[order_id] = (status, at, accepted)

    def forget(self, order_ids: Iterable[str]) -> None:
        """Orders whose partition this worker lost: the new owner measures them."""
        for order_id in order_ids:
            self._open.pop(order_id, None)


class MeteredOutbox:
    """The `Outbox` port, counting what the order writer appends."""

    def __init__(self, inner: Outbox, metrics: WorkerMetrics) -> None:
        self._inner, self._metrics = inner, metrics

    async def events(self, partition: int, events: Sequence[Event],
                     statuses: Sequence[OrderStatus], epoch: int | None = None,
                     heads: dict[str, bytes] | None = None) -> list[Delivery]:
        deliveries = await self._inner.events(partition, events, statuses, epoch, heads)
        self._metrics.appended(events, statuses)
        return deliveries

    async def work(self, work: Work) -> Delivery:
        return await self._inner.work(work)

    async def command(self, command: Command) -> Delivery:
        return await self._inner.command(command)
