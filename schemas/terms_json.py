"""The JSON view of an order's terms: flat, as it was before the terms were nested.

Consumes an `OrderTerms` value (or its JSON view); produces the object the API, the WebSocket
messages and the audit log have always shown for `ExecuteOrder` / `OrderAccepted`: `orderType`,
the common terms and every conditional term of any order type (those the order type does not
take at their default: null, `timeInForce` "GTC"), so a client sees the same keys whatever the
type. The reader takes that object back (and one written before a term existed, which lacks
its key), refusing a conditional term the order type does not take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from domain.orders.status import OrderType
from domain.orders.terms import TERMS_TYPES, OrderTerms
from schemas.json_reader import UnreadableJson, json_reader
from schemas.records import camel, json_converter

TAG: Final = "orderType"

Convert = Callable[[Any], Any]
Read = Callable[[Any, str], Any]


def _defaults() -> dict[str, Any]:
    """Every term of every order type at the value shown when the type does not take it
    (its default, else null; the defaults are enum members or None, shown as strings)."""
    shown: dict[str, Any] = {}
    for cls in TERMS_TYPES:
        for field in dataclasses.fields(cls):
            default = None if field.default is dataclasses.MISSING else field.default
            shown.setdefault(camel(field.name), None if default is None else str(default))
    return shown


def terms_to_json() -> Convert:
    """A function turning terms into their flat JSON view."""
    fillers = _defaults()
    by_class = {cls: json_converter(cls) for cls in TERMS_TYPES}

    def convert(terms: OrderTerms) -> dict[str, Any]:
        return {TAG: terms.order_type.value, **fillers, **by_class[type(terms)](terms)}

    return convert


def terms_from_json() -> Read:
    """A function reading the flat JSON view back into terms."""
    fillers = _defaults()
    readers = {cls.ORDER_TYPE.value: (cls, json_reader(cls)) for cls in TERMS_TYPES}

    def read(value: Any, where: str) -> OrderTerms:
        if not isinstance(value, Mapping) or value.get(TAG, "market") not in readers:
            raise UnreadableJson(f"{where}: expected an object with {TAG} one of "
                                 f"{sorted(readers)}")
        cls, read_fields = readers[value.get(TAG, OrderType.MARKET.value)]
        own = _own_keys(cls)
        foreign = sorted(key for key in value if key != TAG and key not in own
                         and not (key in fillers and value[key] == fillers[key]))
        if foreign:
            raise UnreadableJson(f"{where}: a {cls.ORDER_TYPE} order takes no {foreign}")
        fields = {key: item for key, item in value.items() if key in own}
        try:
            return cls(**read_fields(fields, where))
        except (TypeError, ValueError) as error:
            if isinstance(error, UnreadableJson):
                raise
            raise UnreadableJson(f"{where}: {error}") from error

    return read


def _own_keys(cls: type[Any]) -> frozenset[str]:
    return frozenset(camel(field.name) for field in dataclasses.fields(cls))


def is_terms_union(members: tuple[type[Any], ...]) -> bool:
    return set(members) == set(TERMS_TYPES)


