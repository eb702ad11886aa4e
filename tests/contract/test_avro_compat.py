"""The registry's compatibility rules (schemas.compat): Avro schema resolution, reader vs
writer, on small schemas and on every step of schemas/history."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codec import load_histories
from schemas.compat import incompatibilities, missing_attributes
from schemas.upcasts import UPCASTS


def record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields)}


A = {"name": "a", "type": "long"}


def test_a_field_added_with_a_default_reads_old_records() -> None:
    assert incompatibilities(record(A, {"name": "b", "type": "string", "default": ""}),
                             record(A)) == []


def test_a_field_added_without_a_default_is_reported_by_its_path() -> None:
    assert incompatibilities(record(A, {"name": "b", "type": "string"}), record(A)) == [
        "/R.b: new field without a default"
    ]


def test_a_removed_field_is_skipped() -> None:
    assert incompatibilities(record(A), record(A, {"name": "b", "type": "int"})) == []


def test_promotions_go_one_way() -> None:
    small, wide = record({"name": "a", "type": "int"}), record(A)
    assert incompatibilities(wide, small) == []
    assert incompatibilities(small, wide) == ["/R.a: long cannot be read as int"]


def test_a_union_reads_every_branch_the_writer_may_have_written() -> None:
    optional = record({"name": "a", "type": ["null", "long"], "default": None})
    assert incompatibilities(optional, record(A)) == []
    assert incompatibilities(record(A), optional) == ["/R.a: null cannot be read as long"]
    text = record({"name": "a", "type": ["null", "string"]})
    assert incompatibilities(text, optional) == [
        "/R.a: the reader's union has no branch for long"
    ]


def test_an_enum_missing_a_written_symbol_needs_a_default() -> None:
    def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
        return record({"name": "e", "type": {"type": "enum", "name": "E", "symbols": list(symbols),
                                             **extra}})

    assert incompatibilities(enum("X", "Y"), enum("X")) == []
    assert incompatibilities(enum("X"), enum("X", "Y")) == ["/R.e: enum E lacks the writer's "
                                                            "symbols ['Y']"]
    assert incompatibilities(enum("X", default="X"), enum("X", "Y")) == []


def test_named_types_are_resolved_where_they_are_used() -> None:
    inner = {"type": "record", "name": "I", "fields": [A]}
    writer = record({"name": "x", "type": inner}, {"name": "y", "type": "t.I"})
    reader = record({"name": "x", "type": {**inner, "fields": [A, {"name": "z", "type": "int"}]}},
                    {"name": "y", "type": "t.I"})
    assert incompatibilities(reader, writer) == ["/R.x/I.z: new field without a default",
                                                 "/R.y/I.z: new field without a default"]


STEPS = [(history.name, version, history.versions[version - 1], history.versions[version])
         for history in load_histories() for version in sorted(history.versions)[1:]]


@pytest.mark.parametrize(("name", "version", "old", "new"), STEPS,
                         ids=[f"{name}.v{v}" for name, v, _, _ in STEPS])
def test_every_history_step_is_backward_compatible_unless_an_upcaster_covers_it(
    name: str, version: int, old: dict[str, Any], new: dict[str, Any]
) -> None:
    upcast = version - 1 in UPCASTS.get(name, {})
    assert bool(incompatibilities(new, old)) is upcast


def test_a_complex_type_without_its_required_attribute_is_reported() -> None:
    assert missing_attributes({"type": "record", "name": "X"}) == ["record X without 'fields'"]
    nested = record({"name": "e", "type": ["null", {"type": "enum", "name": "E"}]})
    assert missing_attributes(nested) == ["enum E without 'symbols'"]
    assert [missing_attributes(history.current) for history in load_histories()] == [[]] * 4
