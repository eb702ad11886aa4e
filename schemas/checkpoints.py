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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import fastavro

from schemas.versions import SchemaHistory, load_history

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
    ranges: int = 1  # the id ranges the root is cut into (schemas.chain.ranged_merkle_root)


def load_checkpoint_schema() -> dict[str, Any]:
    """The current version (its history in schemas/history must end with it)."""
    return dict(load_checkpoint_history().current)


def load_checkpoint_history() -> SchemaHistory:
    return load_history("chain_checkpoint")


def checkpoint_value(checkpoint: Checkpoint, schema_id: int, schema: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), {
        "eventsTopic": checkpoint.events_topic, "partition": checkpoint.partition,
        "coveredOffset": checkpoint.covered_offset, "epoch": checkpoint.epoch,
        "orders": checkpoint.orders, "root": checkpoint.root,
        "writtenAt": checkpoint.written_at, "ranges": checkpoint.ranges})
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


class CheckpointReader:
    """Reads a checkpoint record of any version whose schema id it was given."""

    def __init__(self, ids: Mapping[int, int], history: SchemaHistory | None = None) -> None:
        """`ids`: version -> the schema id the registry gave it."""
        history = history or load_checkpoint_history()
        self._reader = fastavro.parse_schema(dict(history.current))
        self._writers = {ids[version]: fastavro.parse_schema(dict(schema))
                         for version, schema in history.versions.items() if version in ids}

    def read(self, value: bytes | None) -> Checkpoint:
        if not value or value[0] != 0 or len(value) <= _HEADER:
            raise BadCheckpoint("not a checkpoint record in the Confluent wire format")
        schema_id = int.from_bytes(value[1:_HEADER], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            raise BadCheckpoint(f"written with schema id {schema_id}, not one of "
                                f"{sorted(self._writers)}")
        try:
            record: Any = fastavro.schemaless_reader(io.BytesIO(value[_HEADER:]), writer,
                                                     self._reader)
        except (EOFError, ValueError, IndexError) as error:
            raise BadCheckpoint(f"corrupt checkpoint: {error!r}") from error
        return Checkpoint(record["eventsTopic"], record["partition"], record["coveredOffset"],
                          record["epoch"], record["orders"], bytes(record["root"]),
                          record["writtenAt"], record["ranges"])
