"""The value of a claim record in `orders.events` (the writer fence: schemas.writer_fence).

Consumes the claimant, the partition and the schema id the registry gave
`schemas/writer_claim.avsc`; produces the record's value in the Confluent wire format (0x00,
the 4-byte id, Avro), so a standard Avro consumer of `orders.events` decodes a claim as a
`WriterClaim` instead of failing on it. The engine's own readers never decode it: they know a
claim by its header. The claim schema has its own subject (`<topic>-oee.orders.WriterClaim`,
the TopicRecordName strategy), so `<topic>-value` keeps describing the order events alone.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Final

import fastavro

CLAIM_SCHEMA_FILE: Final = Path(__file__).parent / "writer_claim.avsc"


def claim_subject(events_topic: str) -> str:
    return f"{events_topic}-oee.orders.WriterClaim"


def load_claim_schema() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(CLAIM_SCHEMA_FILE.read_text(encoding="utf-8"))
    return parsed


def read_claim(value: bytes) -> dict[str, Any]:
    """A claim record's fields, for people (the engine's readers never need them). Any
    Confluent-framed claim decodes: the writer's schema has not changed since v1."""
    if len(value) < 5 or value[0] != 0:
        raise ValueError("not a Confluent-framed claim record")
    parsed = fastavro.parse_schema(load_claim_schema())
    fields = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed, None)
    if not isinstance(fields, dict):
        raise ValueError("a claim record holds a WriterClaim record")
    return fields


def claim_value(claimant: str, partition: int, schema_id: int,
                schema: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema),
                               {"claimant": claimant, "partition": partition})
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
