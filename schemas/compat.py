"""Avro schema compatibility: can a reader schema read what a writer schema wrote?

Consumes two schemas as JSON (named types may be referenced by name after their definition);
produces the list of reasons a reader cannot resolve the writer's data, empty when it can
(the Avro specification's schema resolution rules). The registry's BACKWARD check is
`incompatibilities(new, latest)`: the new schema reads the records of the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastavro.schema import expand_schema

# Writer type -> reader types it promotes to (besides itself).
_PROMOTIONS: Final[Mapping[str, frozenset[str]]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_NAMED: Final = frozenset({"record", "enum", "fixed", "error"})


def incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Why `reader` cannot read data written with `writer` (empty: it can)."""
    return _check(_inline(reader), _inline(writer), "")


_REQUIRED: Final[Mapping[str, str]] = {"record": "fields", "error": "fields", "enum": "symbols",
                                        "fixed": "size", "array": "items", "map": "values"}


def missing_attributes(schema: Any) -> list[str]:
    """The attributes the specification requires that a (complex) type of `schema` lacks."""
    if isinstance(schema, list):
        return [problem for branch in schema for problem in missing_attributes(branch)]
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return missing_attributes(kind)
    required = _REQUIRED.get(str(kind))
    if required is not None and required not in schema:
        return [f"{kind} {schema.get('name', '')} without {required!r}".replace("  ", " ")]
    children = [field.get("type") for field in schema.get("fields", ()) if isinstance(field, dict)]
    children += [schema[key] for key in ("items", "values") if key in schema]
    return [problem for child in children for problem in missing_attributes(child)]


def _inline(schema: Any) -> Any:
    """The schema with every named type written out where it is used."""
    return expand_schema(schema)


def _node(schema: Any) -> Any:
    """A schema as a dict with a `type`, or a list (union)."""
    if isinstance(schema, str):
        return {"type": schema}
    if isinstance(schema, dict) and isinstance(schema["type"], (dict, list)):
        return _node(schema["type"])
    return schema


def _name(node: Mapping[str, Any]) -> str:
    return str(node.get("name", "")).rpartition(".")[2]


def _check(reader: Any, writer: Any, path: str) -> list[str]:
    r, w = _node(reader), _node(writer)
    if isinstance(w, list):  # every branch the writer may have written must be readable
        return [problem for branch in w for problem in _check(r, branch, path)]
    if isinstance(r, list):  # some reader branch must read the writer's type
        if any(not _check(branch, w, path) for branch in r):
            return []
        return [f"{path or '/'}: the reader's union has no branch for {_describe(w)}"]
    rtype, wtype = r["type"], w["type"]
    if rtype != wtype:
        if rtype in _PROMOTIONS.get(wtype, frozenset()):
            return []
        return [f"{path or '/'}: {_describe(w)} cannot be read as {_describe(r)}"]
    if wtype in _NAMED and _name(r) != _name(w):
        return [f"{path or '/'}: {_describe(w)} cannot be read as {_describe(r)}"]
    if wtype in ("record", "error"):
        return _record(r, w, path)
    if wtype == "enum":
        missing = sorted(set(w["symbols"]) - set(r["symbols"]))
        if missing and "default" not in r:
            return [f"{path or '/'}: enum {_name(r)} lacks the writer's symbols {missing}"]
        return []
    if wtype == "fixed" and r["size"] != w["size"]:
        return [f"{path or '/'}: fixed {_name(r)} of size {r['size']}, written {w['size']}"]
    if wtype == "array":
        return _check(r["items"], w["items"], f"{path}[]")
    if wtype == "map":
        return _check(r["values"], w["values"], f"{path}{{}}")
    return []


def _record(reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> list[str]:
    written = {field["name"]: field for field in writer["fields"]}
    problems: list[str] = []
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", ())]
        source = next((written[name] for name in names if name in written), None)
        where = f"{path}/{_name(reader)}.{field['name']}"
        if source is None:
            if "default" not in field:
                problems.append(f"{where}: new field without a default")
            continue
        problems.extend(_check(field["type"], source["type"], where))
    return problems


def _describe(node: Any) -> str:
    if isinstance(node, list):
        return "a union"
    return f"{node['type']} {_name(node)}".strip()
