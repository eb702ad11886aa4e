"""The value of a record in `orders.snapshots`: one partition's folded writer state at an offset.

Consumes a `SnapshotRecord` (plain values: the orders not ended as their encoded events and
chain head, the ended ones as id runs with their heads) and the schema ids the registry gave
each version of `schemas/order_snapshot.avsc`; produces the record's value in the Confluent wire
format (0x00, the 4-byte id, Avro) under the subject `<topic>-value` with the current version,
and reads back any version (an older one resolved to the current: a v1 snapshot reads with
`heads_complete` false). No I/O.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fastavro

from schemas.versions import SchemaHistory, load_history

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
    # (order id, its events' values, its head: the last event's hash, None if it has none)
    orders: tuple[tuple[str, tuple[bytes, ...], bytes | None], ...]
    quarantined: tuple[tuple[str, str], ...]  # (order id, why)
    terminal_uuids: tuple[bytes, ...]  # sorted runs of 16-byte ids (streams.terminal_ids)
    terminal_other: tuple[str, ...]
    terminal_heads: tuple[bytes, ...] = ()  # per run, 32 bytes per id (zeros: none)
    terminal_other_heads: tuple[bytes, ...] = ()  # per other id (empty: none)
    heads_complete: bool = False  # False: the heads are unknown (a v1 snapshot)


def load_snapshot_schema() -> dict[str, Any]:
    """The current schema (its history in schemas/history must end with it)."""
    load_history("order_snapshot")
    parsed: dict[str, Any] = json.loads(SNAPSHOT_SCHEMA_FILE.read_text(encoding="utf-8"))
    return parsed


def load_snapshot_history() -> SchemaHistory:
    """Every committed version of the schema, the current one the newest."""
    return load_history("order_snapshot")


class SnapshotCodec:
    def __init__(self, schema_id: int, schema: dict[str, Any] | None = None, *,
                 older: Mapping[int, dict[str, Any]] | None = None) -> None:
        """Writes with `schema` (default: the current one) under `schema_id`; reads that and
        the records of `older` (schema id -> an older version's schema), resolved to it."""
        self.schema_id = schema_id
        self._schema = fastavro.parse_schema(schema or load_snapshot_schema())
        self._older = {known: fastavro.parse_schema(writer)
                       for known, writer in (older or {}).items() if known != schema_id}

    @classmethod
    def of_history(cls, ids: Mapping[int, int],
                   history: SchemaHistory | None = None) -> SnapshotCodec:
        """The codec of every version of `history` (default: the committed one), given each
        version's schema id (`ids`: version -> id, as the registry gave them)."""
        history = history or load_snapshot_history()
        current = history.current_version
        return cls(ids[current], dict(history.current),
                   older={ids[v]: dict(s) for v, s in history.versions.items()
                          if v != current and v in ids})

    def encode(self, snapshot: SnapshotRecord) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self._schema, {
            "partition": snapshot.partition, "offset": snapshot.offset,
            "fence_epoch": snapshot.fence_epoch, "writer": snapshot.writer,
            "taken_at_ms": snapshot.taken_at_ms, "events": snapshot.events,
            "orders": [{"order_id": o, "events": list(e), "head": h}
                       for o, e, h in snapshot.orders],
            "quarantined": [{"order_id": o, "reason": r} for o, r in snapshot.quarantined],
            "terminal_uuids": list(snapshot.terminal_uuids),
            "terminal_other": list(snapshot.terminal_other),
            "terminal_heads": list(snapshot.terminal_heads),
            "terminal_other_heads": list(snapshot.terminal_other_heads),
            "heads_complete": snapshot.heads_complete,
        })
        return MAGIC + self.schema_id.to_bytes(4, "big") + body.getvalue()

    def decode(self, value: bytes | None) -> SnapshotRecord:
        if not value or value[:1] != MAGIC or len(value) < 5:
            raise SnapshotUnreadable("not a Confluent-framed Avro record")
        schema_id = int.from_bytes(value[1:5], "big")
        if schema_id == self.schema_id:
            writer, reader = self._schema, None
        elif schema_id in self._older:
            writer, reader = self._older[schema_id], self._schema
        else:
            raise SnapshotUnreadable(f"written with schema id {schema_id}; this worker "
                                     f"writes {self.schema_id} and reads "
                                     f"{sorted({self.schema_id, *self._older})}")
        try:
            body = io.BytesIO(value[5:])
            raw: Any = fastavro.schemaless_reader(body, writer, reader)
            if body.tell() != len(value) - 5:
                raise ValueError(f"{len(value) - 5 - body.tell()} bytes after the record")
            return SnapshotRecord(
                partition=raw["partition"], offset=raw["offset"],
                fence_epoch=raw["fence_epoch"], writer=raw["writer"],
                taken_at_ms=raw["taken_at_ms"], events=raw["events"],
                orders=tuple((o["order_id"], tuple(o["events"]), o["head"])
                             for o in raw["orders"]),
                quarantined=tuple((q["order_id"], q["reason"]) for q in raw["quarantined"]),
                terminal_uuids=tuple(raw["terminal_uuids"]),
                terminal_other=tuple(raw["terminal_other"]),
                terminal_heads=tuple(raw["terminal_heads"]),
                terminal_other_heads=tuple(raw["terminal_other_heads"]),
                heads_complete=raw["heads_complete"])
        except SnapshotUnreadable:
            raise
        except Exception as exc:  # fastavro raises many kinds on a corrupt body
            raise SnapshotUnreadable(f"corrupt body ({type(exc).__name__}: {exc})") from exc
