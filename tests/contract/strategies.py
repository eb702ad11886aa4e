"""Hypothesis strategies for every order message, derived from the dataclasses' type hints.

Deriving them (instead of writing one per class) means a field added to an event is
exercised by the round-trip tests the moment it exists.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

from hypothesis import strategies as st

# Avro strings are UTF-8: lone surrogates cannot be encoded, so they are not messages.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
INTS = st.integers(0, 2**31 - 1)  # fits every int and long field
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False)
# Fields whose wire form is narrower than their type: `accept_by` is timestamp-millis, and
# `appended_at` is the consumed record's append time, never written (so None on a round trip).
MILLIS = TIMES.map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
BY_NAME: dict[str, st.SearchStrategy[Any]] = {
    "accept_by": st.none() | MILLIS,
    "appended_at": st.none(),
}


def messages(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of the frozen dataclass `cls`, nested values included."""
    hints = get_type_hints(cls)
    fields = {field.name: BY_NAME.get(field.name) or _values(hints[field.name])
              for field in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def _values(hint: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return st.one_of(*(_values(arg) for arg in get_args(hint)))
    if origin is tuple:
        return st.lists(_values(get_args(hint)[0]), max_size=3).map(tuple)
    if hint is type(None):
        return st.none()
    if dataclasses.is_dataclass(hint):
        return messages(hint)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return st.sampled_from(hint)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: TEXT,
        int: INTS,
        bool: st.booleans(),
        datetime: TIMES,
        Decimal: DECIMALS,
    }
    return simple[hint]
