"""Test helpers working on raw Avro: reading the .avsc files, projecting a record onto an
older schema version, and comparing schema versions structurally."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.codec import MAGIC
from schemas.versions import Schema, default_directory

SCHEMAS: Path = default_directory()


def raw_schema(name: str, version: int | None = None) -> Schema:
    """The JSON of schemas/<name>.avsc, or of history version `version`."""
    path = SCHEMAS / (f"history/{name}.v{version}.avsc" if version else f"{name}.avsc")
    schema: Schema = json.loads(path.read_text(encoding="utf-8"))
    return schema


def parsed(schema: Schema) -> tuple[Schema, dict[str, Any]]:
    """fastavro's parsed schema and its named types (full name -> schema)."""
    named: dict[str, Any] = {}
    result: Schema = parse_schema(schema, named_schemas=named)  # type: ignore[assignment]
    return result, named


def write(schema: Schema, version: int, record: dict[str, Any]) -> bytes:
    """A wire record: header naming `version`, then `record` written with `schema`."""
    buffer = BytesIO(bytes((MAGIC, version)))
    buffer.seek(2)
    schemaless_writer(buffer, parsed(schema)[0], record)
    return buffer.getvalue()


def read(schema: Schema, data: bytes) -> dict[str, Any]:
    """The record of a wire record written with exactly `schema` (no resolution)."""
    record: dict[str, Any] = schemaless_reader(  # type: ignore[assignment]
        BytesIO(data[2:]), parsed(schema)[0], None, True, True
    )
    return record


class NotInVersion(Exception):
    """The value uses a union branch that the older schema does not have."""


def project(value: Any, schema: Any, named: dict[str, Any]) -> Any:
    """`value` (a record of the current schema) as an older `schema` can express it."""
    schema = named.get(schema, schema) if isinstance(schema, str) else schema
    if isinstance(schema, list):
        if value is None:
            return None
        branches = [named.get(b, b) if isinstance(b, str) else b for b in schema]
        if isinstance(value, tuple):
            name, record = value
            for branch in branches:
                if isinstance(branch, dict) and branch.get("name") == name:
                    return name, project(record, branch, named)
            raise NotInVersion(name)
        (branch,) = [b for b in branches if b != "null"]
        return project(value, branch, named)
    if isinstance(schema, dict) and schema["type"] == "record":
        return {
            field["name"]: project(value[field["name"]], field["type"], named)
            if field["name"] in value
            else field.get("default", _zero(field["type"]))
            for field in schema["fields"]
        }
    if isinstance(schema, dict) and schema["type"] == "array":
        return [project(item, schema["items"], named) for item in value]
    return value


def _zero(schema: Any) -> Any:
    """A value for a field the current schema dropped (and the old one did not default)."""
    zeros = {"string": "", "int": 0, "long": 0, "boolean": False, "null": None}
    if isinstance(schema, list):
        return _zero(schema[0])
    if isinstance(schema, dict):
        return [] if schema["type"] == "array" else _zero(schema["type"])
    return zeros[schema]


def records(schema: Schema) -> dict[str, dict[str, Any]]:
    """Every named record of `schema`, by full name."""
    return {
        name: definition
        for name, definition in parsed(schema)[1].items()
        if isinstance(definition, dict) and definition.get("type") == "record"
    }


def backward_incompatibilities(old: Schema, new: Schema) -> list[str]:
    """What keeps `new` from reading records written with `old`, structurally: a field
    added without a default, or a record (payload branch) removed."""
    problems: list[str] = []
    old_records, new_records = records(old), records(new)
    for name in sorted(old_records.keys() - new_records.keys()):
        problems.append(f"{name} was removed: old records of it cannot be read")
    for name in sorted(old_records.keys() & new_records.keys()):
        old_fields = {field["name"] for field in old_records[name]["fields"]}
        for field in new_records[name]["fields"]:
            names = {field["name"], *field.get("aliases", ())}
            if not names & old_fields and "default" not in field:
                problems.append(f"{name}.{field['name']} was added without a default")
    return problems


_ORDER_TYPES = {"oee.orders.MarketTerms": "market", "oee.orders.LimitTerms": "limit",
                "oee.orders.SniperTerms": "sniper"}
_V2_DEFAULTS: dict[str, Any] = {"limitPrice": None, "timeInForce": "GTC", "expiresAt": None,
                                "trigger": None, "minLiquidityUsd": None, "maxPrice": None}


def flat_terms(record: dict[str, Any], version: int) -> dict[str, Any]:
    """A current record as a writer of `version` < 3 wrote it: the nested terms of
    ExecuteOrder / OrderAccepted flat (the inverse of `schemas.upcasts.upcast_v2_v3`); v1 had
    market orders only."""
    name, payload = record["payload"]
    if "terms" not in payload:
        return record
    terms_name, terms = payload["terms"]
    if terms_name not in _ORDER_TYPES:
        raise NotInVersion(terms_name)  # twap and dca terms came with v6
    order_type = _ORDER_TYPES[terms_name]
    if version < 2 and order_type != "market":
        raise NotInVersion(terms_name)
    return {**record, "payload": (name, {"orderType": order_type, **_V2_DEFAULTS, **terms})}
