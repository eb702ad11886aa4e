"""The records of `orders.checkpoints` (schemas/chain_checkpoint.avsc): pinned chain roots.

Consumes a `Checkpoint` (one partition of `orders.events`: the offset its heads are as of, the
writer's epoch, the number of orders and the Merkle root of their heads, `schemas.chain`) and
the schema id the registry gave the schema; produces the record's value in the Confluent wire
format (0x00, the 4-byte id, Avro), and reads it back. An auditor who keeps a root can later
prove that nothing at or before its covered offset changed: `oee replay --verify` recomputes
the heads at that offset and compares.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import fastavro

CHECKPOINT_SCHEMA_FILE: Final = Path(__file__).parent / "chain_checkpoint.avsc"
_HEADER: Final = 5


class BadCheckpoint(ValueError):
    """A record of the checkpoints topic that is not a checkpoint."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    events_topic: str
    partition: int
    covered_offset: int
    epoch: int
    orders: int
    root: bytes
    written_at: datetime


def load_checkpoint_schema() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(CHECKPOINT_SCHEMA_FILE.read_text(encoding="utf-8"))
    return parsed


def checkpoint_value(checkpoint: Checkpoint, schema_id: int, schema: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), {
        "eventsTopic": checkpoint.events_topic, "partition": checkpoint.partition,
        "coveredOffset": checkpoint.covered_offset, "epoch": checkpoint.epoch,
        "orders": checkpoint.orders, "root": checkpoint.root,
        "writtenAt": checkpoint.written_at})
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def read_checkpoint(value: bytes | None, schema: dict[str, Any]) -> Checkpoint:
    """A checkpoint record's value (written with this schema: there is one version)."""
    if not value or value[0] != 0 or len(value) <= _HEADER:
        raise BadCheckpoint("not a checkpoint record in the Confluent wire format")
    try:
        record: Any = fastavro.schemaless_reader(io.BytesIO(value[_HEADER:]),
                                                 fastavro.parse_schema(schema), None)
    except (EOFError, ValueError, IndexError) as error:
        raise BadCheckpoint(f"corrupt checkpoint: {error!r}") from error
    return Checkpoint(record["eventsTopic"], record["partition"], record["coveredOffset"],
                      record["epoch"], record["orders"], bytes(record["root"]),
                      record["writtenAt"])
