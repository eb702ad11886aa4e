"""order_snapshot v2 (issue 10): every order's chain head rides in the snapshot. The schema's
history stays backward compatible: a v1 snapshot, written by an older worker with the v1 .avsc
alone, is still read (resolved to v2, its heads unknown: `heads_complete` false), and a v2
snapshot carries every field back."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from schemas.snapshots import SnapshotCodec, SnapshotRecord, SnapshotUnreadable
from schemas.versions import load_history
from tests.contract.avro_records import backward_incompatibilities, raw_schema

NAME = "order_snapshot"
IDS = {1: 301, 2: 302}  # version -> schema id, as a registry hands them out
HEAD = bytes(range(32))
RUN = bytes(range(16)) + bytes(range(1, 17))


def test_v2_adds_the_heads_with_defaults_and_reads_every_v1_record() -> None:
    v1, v2 = raw_schema(NAME, 1), raw_schema(NAME, 2)
    assert raw_schema(NAME) == v2 and sorted(load_history(NAME).versions) == [1, 2]
    assert backward_incompatibilities(v1, v2) == []
    old = {f["name"] for f in v1["fields"]}
    added = {f["name"]: f["default"] for f in v2["fields"] if f["name"] not in old}
    assert added == {"terminal_heads": [], "terminal_other_heads": [], "heads_complete": False}
    (history,) = [f for f in v2["fields"] if f["name"] == "orders"]
    head = history["type"]["items"]["fields"][-1]
    assert (head["name"], head["type"], head["default"]) == ("head", ["null", "bytes"], None)


def v1_record() -> dict[str, Any]:
    return {"partition": 3, "offset": 120, "fence_epoch": 7, "writer": "old:1",
            "taken_at_ms": 1, "events": 118,
            "orders": [{"order_id": "o-1", "events": [b"e1", b"e2"]}],
            "quarantined": [{"order_id": "o-2", "reason": "why"}],
            "terminal_uuids": [RUN], "terminal_other": ["x"]}


def test_a_v1_snapshot_written_with_the_v1_schema_alone_is_read_without_heads() -> None:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(raw_schema(NAME, 1)), v1_record())
    value = b"\x00" + IDS[1].to_bytes(4, "big") + body.getvalue()

    read = SnapshotCodec.of_history(IDS).decode(value)

    assert read == SnapshotRecord(3, 120, 7, "old:1", 1, 118, (("o-1", (b"e1", b"e2"), None),),
                                  (("o-2", "why"),), (RUN,), ("x",), (), (), False)
    with pytest.raises(SnapshotUnreadable, match="301"):
        SnapshotCodec.of_history({2: IDS[2]}).decode(value)  # a codec that never knew v1


def test_a_v2_snapshot_carries_every_head_back_under_the_current_id() -> None:
    codec = SnapshotCodec.of_history(IDS)
    record = SnapshotRecord(3, 120, 7, "new:1", 1, 118, (("o-1", (b"e1",), HEAD),
                                                          ("o-3", (b"e3",), None)),
                            (), (RUN,), ("x",), (HEAD + HEAD,), (b"",), True)

    value = codec.encode(record)

    assert value[1:5] == IDS[2].to_bytes(4, "big")
    assert codec.decode(value) == record
