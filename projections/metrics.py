"""The projector's Prometheus metrics, including the engine-wide order counts by status.

Consumes each batch the projector folds (the states before and after the fold) and, once per
connection, one count of the read model's `orders` by status; produces, in the projector's
`CollectorRegistry`:
- `oee_orders{status}`: orders in the read model by status. A global fact: only the live
  projector (one per engine) exports it, kept current from its own fold, never queried on
  a scrape;
- `oee_projector_events_total{type}`, `oee_projector_duplicates_total`,
  `oee_projector_rejects_total`: what this process applied, skipped, rejected;
- `oee_projector_batch_seconds` (histogram): one batch's transaction, load to commit.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import sql

from domain.orders.status import OrderStatus
from projections.batch import BatchRows, DecodedBatch, Snapshots, fold_batch
from readmodel.rows import EVENT_COLUMNS
from schemas.codec import Codec
from telemetry.consumer import ConsumerProgress

_TYPE = EVENT_COLUMNS.index("type")

Moves = Tally[tuple[OrderStatus | None, OrderStatus | None]]


class ProjectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = Gauge("oee_orders", "Orders in the read model by status (the projector's "
                            "fold).", ["status"], registry=registry)
        self.events = Counter("oee_projector_events", "Events applied to the read model, by "
                              "type.", ["type"], registry=registry)
        self.duplicates = Counter("oee_projector_duplicates", "Events skipped: already applied.",
                                  registry=registry)
        self.rejects = Counter("oee_projector_rejects", "Records the projector could not apply.",
                               registry=registry)
        self.batch_seconds = Histogram("oee_projector_batch_seconds",
                                       "One batch's transaction, from load to commit.",
                                       registry=registry)
        self._moves: Moves = Tally()

    def fold(self, codec: Codec, batch: DecodedBatch) -> Callable[[Snapshots], BatchRows]:
        """`fold_batch`, noting how the batch moves orders between statuses (kept until
        `committed`: a rolled-back batch moves nothing)."""

        def fold(snapshots: Snapshots) -> BatchRows:
            before = {order_id: state.status for order_id, state in snapshots.states.items()}
            rows = fold_batch(codec, batch, snapshots)
            self._moves = Tally((before.get(order_id), state.status)
                                for order_id, state in snapshots.states.items()
                                if before.get(order_id) is not state.status)
            return rows

        return fold

    def committed(self, rows: BatchRows, seconds: float) -> None:
        for row in rows.events:
            self.events.labels(row[_TYPE]).inc()
        self.duplicates.inc(rows.duplicates)
        self.rejects.inc(len(rows.rejects))
        self.batch_seconds.observe(seconds)
        for (left, entered), count in self._moves.items():
            if left is not None:
                self.orders.labels(left.value).dec(count)
            if entered is not None:
                self.orders.labels(entered.value).inc(count)
        self._moves = Tally()

    async def count(self, conn: Any, schema: str) -> None:
        """Start from the read model's counts (once per connection, not per scrape)."""
        query = sql.SQL("select status, count(*) from {} group by status").format(
            sql.Identifier(schema, "orders"))
        counts = dict(await (await conn.execute(query)).fetchall())
        for status in OrderStatus:
            self.orders.labels(status.value).set(counts.get(status.value, 0))


@dataclass(slots=True)
class ProjectorTelemetry:
    """Everything one projector reports: metrics, its consumer's progress, the database."""

    group: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    metrics: ProjectorMetrics = field(init=False)
    progress: ConsumerProgress = field(init=False)
    connected: bool = False  # to the read model, with its offsets loaded

    def __post_init__(self) -> None:
        self.metrics = ProjectorMetrics(self.registry)
        self.progress = ConsumerProgress(self.group).register(self.registry)

    def health(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = self.progress.health()
        return ok and self.connected, {**detail, "database": self.connected}
