"""Reading a message back from its JSON view: the inverse of `schemas.records.json_converter`.

Consumes a decoded JSON object (camelCase keys, as the API and the topic streams show
messages) and produces the keyword arguments of a message dataclass, so hand-written inputs
such as the price feed's scripts use the same shape as everything the engine prints.

Strict on purpose, because the input is typed by a person: an unknown or missing key is an
error, integers are JSON integers or digit strings (base-unit amounts are strings in the
JSON view), Decimals are strings or exact numbers (parse the JSON with `parse_float=Decimal`:
a float has already lost digits and is refused), timestamps are ISO 8601 with a UTC offset.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Protocol, get_args, get_origin, get_type_hints

from schemas.records import camel, optional_type, record_union

Read = Callable[[Any, str], Any]  # (JSON value, where it is) -> Python value

# Bounded: int() of a huge digit string is quadratic, and no amount has more than 40 digits.
_INTEGER: Final = re.compile(r"-?[0-9]{1,40}", re.ASCII)
# Decimal() alone would also take " 5 ", "5_000" and "NaN": not what a person means by a price.
# Plain notation can be long ("0.000...01" is how the JSON view writes 1E-30), hence 400.
_DECIMAL: Final = re.compile(r"-?[0-9]{1,400}(\.[0-9]{1,400})?([eE][-+]?[0-9]{1,4})?", re.ASCII)


class UnreadableJson(ValueError):
    """A JSON value that does not make the message (the message names the field)."""


class FieldsReader(Protocol):
    """JSON object -> keyword arguments; `where` prefixes error messages (a line, a path)."""

    def __call__(self, data: Mapping[str, Any], where: str = ...) -> dict[str, Any]: ...


def json_reader(cls: type[Any], *, skip: frozenset[str] = frozenset()) -> FieldsReader:
    """A function turning the JSON view of a `cls` (less `skip`) into `cls`'s keyword args.

    An order's terms are read from their flat view in their owner (`schemas.terms_json`)."""
    from schemas.terms_json import is_terms_union, terms_from_json  # it builds on this module

    hints = get_type_hints(cls)
    flat = [field.name for field in dataclasses.fields(cls)
            if field.name not in skip and is_terms_union(record_union(hints[field.name]))]
    if flat:
        return _with_flat_terms(cls, skip, flat[0], terms_from_json())
    fields = tuple(
        (field.name, camel(field.name), _reader(hints[field.name]))
        for field in dataclasses.fields(cls)
        if field.name not in skip and field.init
    )
    known = frozenset(key for _, key, _ in fields)
    # A field with a default may be missing, as in Avro: JSON written before the field was
    # added (an audit row of an older event version) reads with that default.
    defaulted = frozenset(camel(field.name) for field in dataclasses.fields(cls)
                          if field.default is not dataclasses.MISSING
                          or field.default_factory is not dataclasses.MISSING)
    required = frozenset(camel(name) for name, hint in hints.items()
                         if camel(name) in known and optional_type(hint) is None
                         and camel(name) not in defaulted)

    def read(data: Mapping[str, Any], where: str = cls.__name__) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise UnreadableJson(f"{where}: expected an object, got {_kind(data)}")
        unknown, missing = sorted(set(data) - known), sorted(required - set(data))
        if unknown or missing:
            raise UnreadableJson(f"{where}: unknown field(s) {unknown}, missing {missing}")
        return {attr: to(data.get(key), f"{where}.{key}") for attr, key, to in fields
                if key in data or key not in defaulted}

    return read


def _with_flat_terms(cls: type[Any], skip: frozenset[str], terms_field: str,
                     read_terms: Read) -> FieldsReader:
    """The reader of a class holding terms: its own keys as usual, every other key the terms'."""
    rest = json_reader(cls, skip=skip | {terms_field})
    own = frozenset(camel(field.name) for field in dataclasses.fields(cls)
                    if field.name not in skip and field.name != terms_field)

    def read(data: Mapping[str, Any], where: str = cls.__name__) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise UnreadableJson(f"{where}: expected an object, got {_kind(data)}")
        terms = {key: value for key, value in data.items() if key not in own}
        mine = {key: value for key, value in data.items() if key in own}
        return {**rest(mine, where), terms_field: read_terms(terms, f"{where}.terms")}

    return read


def _reader(hint: Any) -> Read:
    inner = optional_type(hint)
    if inner is not None:
        read_inner = _reader(inner)
        return lambda value, where: None if value is None else read_inner(value, where)
    members = record_union(hint)
    if members:
        return _union(members)
    if get_origin(hint) is tuple:
        item = _reader(get_args(hint)[0])
        return lambda value, where: tuple(
            item(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))
    if dataclasses.is_dataclass(hint):
        return _record(hint)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _enum(hint)
    simple = _SIMPLE.get(hint)
    if simple is None:
        raise TypeError(f"no JSON reader for {hint!r}")
    return simple


def _record(cls: type[Any]) -> Read:
    read = json_reader(cls)

    def build(value: Any, where: str) -> Any:
        try:
            return cls(**read(value, where))
        except (TypeError, ValueError) as error:
            if isinstance(error, UnreadableJson):
                raise
            raise UnreadableJson(f"{where}: {error}") from error

    return build


def _union(members: tuple[type[Any], ...]) -> Read:
    """A union of records is an object whose `type` names the record (as the view writes it)."""
    builders = {cls.__name__: (cls, json_reader(cls)) for cls in members}

    def build(value: Any, where: str) -> Any:
        if not isinstance(value, Mapping) or value.get("type") not in builders:
            raise UnreadableJson(f"{where}: expected an object with \"type\" one of "
                                 f"{sorted(builders)}")
        cls, read = builders[value["type"]]
        fields = {key: item for key, item in value.items() if key != "type"}
        try:
            return cls(**read(fields, f"{where}<{cls.__name__}>"))
        except (TypeError, ValueError) as error:
            if isinstance(error, UnreadableJson):
                raise
            raise UnreadableJson(f"{where}: {error}") from error

    return build


def _enum(enum: type[StrEnum]) -> Read:
    def read(value: Any, where: str) -> Any:
        try:
            return enum(_str(value, where))
        except ValueError:
            raise UnreadableJson(f"{where}: {value!r} is not one of {[str(e) for e in enum]}")

    return read


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UnreadableJson(f"{where}: expected a string, got {_kind(value)}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise UnreadableJson(f"{where}: expected an integer or a string of digits, got {value!r}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise UnreadableJson(f"{where}: expected true or false, got {_kind(value)}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        raise UnreadableJson(f"{where}: a float has lost digits already; write {value!r} "
                             "as a string (or parse the JSON with parse_float=Decimal)")
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return Decimal(value)
    raise UnreadableJson(f"{where}: expected a decimal string, got {value!r}")


def _datetime(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_str(value, where))
    except ValueError:
        raise UnreadableJson(f"{where}: {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise UnreadableJson(f"{where}: {value!r} has no UTC offset")
    return moment


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnreadableJson(f"{where}: expected an array, got {_kind(value)}")
    return value


_SIMPLE: Final[Mapping[Any, Read]] = {
    str: _str,
    int: _int,
    bool: _bool,
    Decimal: _decimal,
    datetime: _datetime,
}


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
