"""The value of a record in `orders.snapshots`: one partition's folded writer state at an offset.

Consumes a `SnapshotRecord` (plain values: the orders not ended as their encoded events, the
ended ones as id runs) and the schema id the registry gave `schemas/order_snapshot.avsc`;
produces the record's value in the Confluent wire format (0x00, the 4-byte id, Avro) under the
subject `<topic>-value`, and reads it back. No I/O.

Why orders are stored as their events and not as an Avro mirror of `OrderState`: the state is
derived (`evolve` over the events) and wide (terms union, routing decision with every quote,
attempt errors, status history). A second schema for it would have to change in step with
`evolve` forever, while the events already have a versioned contract with upcasts
(`order_event.avsc`, `schemas/upcasts.py`). A snapshot is a cache: one this worker cannot read
(another schema id, a corrupt body) is reported as `SnapshotUnreadable`, and the caller folds
the partition from the event store instead.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fastavro

from schemas.versions import load_history

SNAPSHOT_SCHEMA_FILE: Final = Path(__file__).parent / "order_snapshot.avsc"
MAGIC: Final = b"\x00"


class SnapshotUnreadable(ValueError):
    """The record is not a snapshot this worker can read."""


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    partition: int
    offset: int  # the fold of orders.events[partition] offsets [0, offset)
    fence_epoch: int
    writer: str
    taken_at_ms: int
    events: int
    orders: tuple[tuple[str, tuple[bytes, ...]], ...]  # (order id, its events' values)
    quarantined: tuple[tuple[str, str], ...]  # (order id, why)
    terminal_uuids: tuple[bytes, ...]  # sorted runs of 16-byte ids (streams.terminal_ids)
    terminal_other: tuple[str, ...]


def load_snapshot_schema() -> dict[str, Any]:
    """The current schema (its history in schemas/history must end with it)."""
    load_history("order_snapshot")
    parsed: dict[str, Any] = json.loads(SNAPSHOT_SCHEMA_FILE.read_text(encoding="utf-8"))
    return parsed


class SnapshotCodec:
    def __init__(self, schema_id: int, schema: dict[str, Any] | None = None) -> None:
        self.schema_id = schema_id
        self._schema = fastavro.parse_schema(schema or load_snapshot_schema())

    def encode(self, snapshot: SnapshotRecord) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self._schema, {
            "partition": snapshot.partition, "offset": snapshot.offset,
            "fence_epoch": snapshot.fence_epoch, "writer": snapshot.writer,
            "taken_at_ms": snapshot.taken_at_ms, "events": snapshot.events,
            "orders": [{"order_id": o, "events": list(e)} for o, e in snapshot.orders],
            "quarantined": [{"order_id": o, "reason": r} for o, r in snapshot.quarantined],
            "terminal_uuids": list(snapshot.terminal_uuids),
            "terminal_other": list(snapshot.terminal_other),
        })
        return MAGIC + self.schema_id.to_bytes(4, "big") + body.getvalue()

    def decode(self, value: bytes | None) -> SnapshotRecord:
        if not value or value[:1] != MAGIC or len(value) < 5:
            raise SnapshotUnreadable("not a Confluent-framed Avro record")
        schema_id = int.from_bytes(value[1:5], "big")
        if schema_id != self.schema_id:
            raise SnapshotUnreadable(f"written with schema id {schema_id}; this worker "
                                     f"writes and reads {self.schema_id}")
        try:
            body = io.BytesIO(value[5:])
            raw: Any = fastavro.schemaless_reader(body, self._schema, None)
            if body.tell() != len(value) - 5:
                raise ValueError(f"{len(value) - 5 - body.tell()} bytes after the record")
            return SnapshotRecord(
                partition=raw["partition"], offset=raw["offset"],
                fence_epoch=raw["fence_epoch"], writer=raw["writer"],
                taken_at_ms=raw["taken_at_ms"], events=raw["events"],
                orders=tuple((o["order_id"], tuple(o["events"])) for o in raw["orders"]),
                quarantined=tuple((q["order_id"], q["reason"]) for q in raw["quarantined"]),
                terminal_uuids=tuple(raw["terminal_uuids"]),
                terminal_other=tuple(raw["terminal_other"]))
        except SnapshotUnreadable:
            raise
        except Exception as exc:  # fastavro raises many kinds on a corrupt body
            raise SnapshotUnreadable(f"corrupt body ({type(exc).__name__}: {exc})") from exc
