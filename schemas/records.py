"""Mapping the messages (frozen dataclasses) to Avro records and to JSON, and back.

A mapping is built once per message type by walking the Python type hints and the Avro
schema side by side, so a field missing on either side, or a type that does not match
(say a Decimal against a long), is a `SchemaMismatch` when the codec is built, not a
surprise in production. Python names are snake_case, Avro and JSON names camelCase.
A field typed as a union of dataclasses (a pool's state) is an Avro union of records, and
in JSON an object whose `type` names the record.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

from schemas.errors import SchemaMismatch

Convert = Callable[[Any], Any]
Named = Mapping[str, Any]  # fastavro's named schemas: full name -> parsed schema

# Base-unit amounts are strings in JSON (as in Jupiter's API): they can exceed 2**53.
AMOUNT_FIELDS: Final = frozenset({
    "amount_in", "amount_out", "min_amount_out", "fee", "amount_per_slice",
    # pool state of the market events
    "reserve_x", "reserve_y", "active_x", "active_y", "bin_liquidity",
})
_TIMESTAMPS: Final = frozenset({"timestamp-micros", "timestamp-millis"})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _identity(value: Any) -> Any:
    return value


class RecordMapping:
    """How one dataclass maps to one Avro record, field by field."""

    __slots__ = ("cls", "fullname", "_plain", "_converted")

    def __init__(
        self, cls: type[Any], fullname: str, fields: Sequence[tuple[str, str, Convert, Convert]]
    ) -> None:
        self.cls = cls
        self.fullname = fullname
        # Most fields need no conversion: copying them without a call halves the cost.
        plain = [(attr, key) for attr, key, to, back in fields if to is back is _identity]
        self._plain = tuple(plain)
        self._converted = tuple(field for field in fields if field[:2] not in plain)

    def to_avro(self, message: Any) -> dict[str, Any]:
        record = {key: getattr(message, attr) for attr, key in self._plain}
        for attr, key, to, _ in self._converted:
            record[key] = to(getattr(message, attr))
        return record

    def from_avro(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of `cls` for a record (the envelope fields excluded)."""
        kwargs = {attr: record[key] for attr, key in self._plain}
        for attr, key, _, back in self._converted:
            kwargs[attr] = back(record[key])
        return kwargs


def record_mapping(
    cls: type[Any], schema: Any, named: Named, *, skip: frozenset[str] = frozenset()
) -> RecordMapping:
    """Map dataclass `cls` (less the `skip` fields) onto Avro record `schema`."""
    schema = _resolve(schema, named)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaMismatch(f"{cls.__name__}: the schema is not a record: {schema!r}")
    fullname = str(schema["name"])
    if fullname.rpartition(".")[2] != cls.__name__:
        raise SchemaMismatch(f"{cls.__name__} is mapped to Avro record {fullname}")
    hints = get_type_hints(cls)
    attrs = [field.name for field in dataclasses.fields(cls) if field.name not in skip]
    avro_fields = {field["name"]: field["type"] for field in schema["fields"]}
    only_python = sorted(camel(a) for a in attrs if camel(a) not in avro_fields)
    only_avro = sorted(set(avro_fields) - {camel(a) for a in attrs})
    if only_python or only_avro:
        raise SchemaMismatch(
            f"{cls.__name__} vs {fullname}: only in Python {only_python}, only in Avro {only_avro}"
        )
    fields = tuple(
        (attr, camel(attr), *_converters(hints[attr], avro_fields[camel(attr)], named, attr, cls))
        for attr in attrs
    )
    return RecordMapping(cls=cls, fullname=fullname, fields=fields)


def _converters(
    hint: Any, avro: Any, named: Named, attr: str, owner: type[Any]
) -> tuple[Convert, Convert]:
    """(to Avro, from Avro) for one field; raises `SchemaMismatch` if the types disagree."""
    avro = _resolve(avro, named)
    inner = optional_type(hint)
    if inner is not None:
        if not (isinstance(avro, list) and len(avro) == 2 and avro[0] == "null"):
            raise _mismatch(owner, attr, hint, avro)
        to, back = _converters(inner, avro[1], named, attr, owner)
        if to is _identity and back is _identity:
            return _identity, _identity
        return (lambda v: None if v is None else to(v)), (lambda v: None if v is None else back(v))
    members = record_union(hint)
    if members:
        return _union_converters(members, avro, named, attr, owner)
    if get_origin(hint) is tuple:
        item, ellipsis = get_args(hint)
        if ellipsis is not Ellipsis or not (isinstance(avro, dict) and avro["type"] == "array"):
            raise _mismatch(owner, attr, hint, avro)
        to, back = _converters(item, avro["items"], named, attr, owner)
        if to is _identity and back is _identity:
            return list, tuple
        return (lambda v: [to(x) for x in v]), (lambda v: tuple([back(x) for x in v]))
    if dataclasses.is_dataclass(hint):
        nested = record_mapping(hint, avro, named)  # type: ignore[arg-type]
        make = nested.cls
        return nested.to_avro, (lambda v: make(**nested.from_avro(v)))
    expected = _PRIMITIVES.get(hint) or _enum_type(hint)
    if expected is None or not _avro_matches(avro, expected):
        raise _mismatch(owner, attr, hint, avro)
    if hint is Decimal:
        return str, Decimal
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return str, _enum_reader(hint)
    return _identity, _identity


def _enum_reader(enum: type[StrEnum]) -> Convert:
    """`enum(value)` by a dict lookup: calling an enum class costs a microsecond in Python
    (EnumType.__call__), and every event carries one or two. An unknown value still fails
    in `enum(value)`, with its ValueError."""
    members = {member.value: member for member in enum}

    def back(value: Any) -> Any:
        member = members.get(value)
        return enum(value) if member is None else member

    return back


_PRIMITIVES: Final[Mapping[Any, tuple[str, ...]]] = {
    str: ("string",),
    bool: ("boolean",),
    int: ("int", "long"),
    Decimal: ("string",),  # exact, as text: Avro's bytes-decimal needs a fixed scale
    datetime: ("timestamp",),
}


def _union_converters(
    members: tuple[type[Any], ...], avro: Any, named: Named, attr: str, owner: type[Any]
) -> tuple[Convert, Convert]:
    """A union of records: written as (full name, record), read back by the name it carries."""
    branches = [_resolve(branch, named) for branch in avro] if isinstance(avro, list) else []
    by_short = {
        str(branch["name"]).rpartition(".")[2]: branch
        for branch in branches
        if isinstance(branch, dict) and branch.get("type") == "record"
    }
    if len(by_short) != len(branches) or set(by_short) != {cls.__name__ for cls in members}:
        raise _mismatch(owner, attr, members, avro)
    by_class = {cls: record_mapping(cls, by_short[cls.__name__], named) for cls in members}
    by_name = {mapping.fullname: mapping for mapping in by_class.values()}

    def to(value: Any) -> tuple[str, dict[str, Any]]:
        mapping = by_class[type(value)]
        return mapping.fullname, mapping.to_avro(value)

    def back(value: tuple[str, Mapping[str, Any]]) -> Any:
        name, record = value  # fastavro reads a union of records as (name, record)
        mapping = by_name[name]
        return mapping.cls(**mapping.from_avro(record))

    return to, back


def record_union(hint: Any) -> tuple[type[Any], ...]:
    """The member classes of a union of two or more dataclasses, else ()."""
    if get_origin(hint) in (Union, types.UnionType):
        members = get_args(hint)
        if len(members) > 1 and all(dataclasses.is_dataclass(m) for m in members):
            return members
    return ()


def _enum_type(hint: Any) -> tuple[str, ...] | None:
    # Strings, not Avro enums: a value unknown to an older reader then fails loudly in
    # the Python enum instead of being silently mapped to an enum default.
    return ("string",) if isinstance(hint, type) and issubclass(hint, StrEnum) else None


def _avro_matches(avro: Any, expected: tuple[str, ...]) -> bool:
    if expected == ("timestamp",):
        return isinstance(avro, dict) and avro.get("logicalType") in _TIMESTAMPS
    return isinstance(avro, str) and avro in expected


def optional_type(hint: Any) -> Any | None:
    """X for `X | None`, else None."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0]
    return None


def _resolve(avro: Any, named: Named) -> Any:
    return named[avro] if isinstance(avro, str) and avro in named else avro


def _mismatch(owner: type[Any], attr: str, hint: Any, avro: Any) -> SchemaMismatch:
    return SchemaMismatch(f"{owner.__name__}.{attr}: Python {hint!r} does not match Avro {avro!r}")


# --- JSON view ----------------------------------------------------------------------------


def json_converter(cls: type[Any], *, skip: frozenset[str] = frozenset()) -> Convert:
    """A function turning a `cls` instance into a JSON-ready dict with camelCase keys.

    An order's terms are shown flat in their owner (`schemas.terms_json`)."""
    from schemas.terms_json import is_terms_union, terms_to_json  # it builds on this module

    hints = get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls) if field.name not in skip]
    flat = {name for name in names if is_terms_union(record_union(hints[name]))}
    fields = tuple((name, camel(name), _json_value(hints[name], name))
                   for name in names if name not in flat)
    if not flat:
        return lambda message: {key: to(getattr(message, attr)) for attr, key, to in fields}
    (terms_field,) = flat
    terms = terms_to_json()
    return lambda message: {**terms(getattr(message, terms_field)),
                            **{key: to(getattr(message, attr)) for attr, key, to in fields}}


def _json_value(hint: Any, attr: str) -> Convert:
    inner = optional_type(hint)
    if inner is not None:
        to = _json_value(inner, attr)
        return lambda v: None if v is None else to(v)
    members = record_union(hint)
    if members:
        # The branch's name says which record it is, as Avro's union does.
        branches = {cls: json_converter(cls) for cls in members}
        return lambda v: {"type": type(v).__name__, **branches[type(v)](v)}
    if get_origin(hint) is tuple:
        item = _json_value(get_args(hint)[0], attr)
        return lambda v: [item(x) for x in v]
    if dataclasses.is_dataclass(hint):
        return json_converter(hint)  # type: ignore[arg-type]
    if hint is datetime:
        return lambda v: v.isoformat()
    if hint is Decimal:
        return lambda v: format(v, "f")  # plain notation: "0.0000001", not "1E-7"
    if hint is int and attr in AMOUNT_FIELDS:
        return str
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return str
    return _identity
