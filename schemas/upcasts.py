"""Upcasters: what Avro schema resolution cannot express, applied to old records on read.

Consumes a record decoded with (or resolved to) schema version N; produces the same record in
the shape of version N+1. Avro resolution handles added fields with defaults and removed
fields; it cannot move fields into a nested record. `UPCASTS[schema][N]` is the function
`upcast_vN_vN+1` (the pyeventsourcing model): the codec resolves a record up to the first
version that has an upcaster, applies it, and goes on, so a record of any committed version
reads as the current one. The contract tests check each step (tests/contract).

- v2 -> v3 (order_command, order_event): the flat terms of `ExecuteOrder` / `OrderAccepted`
  (`orderType`, tokens, amount, slippage, key and the six optional conditional fields of v2)
  become the nested `terms` record of the order type (`MarketTerms | LimitTerms |
  SniperTerms`). v1 records are resolved to v2 by Avro first (market orders, GTC).
- v2 -> v3 (order_event): the envelope's `status`, which a v3 writer fills from its fold, is
  derived here, once, from the transition table (`transitions.implied_status`); it stays null
  where the event alone cannot tell it (a CancelRejected, a confirm-stage failure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from domain.orders.events import EVENT_TYPES
from domain.orders.transitions import implied_status

Record = dict[str, Any]
_EVENT_CLASSES: Final = {cls.__name__: cls for cls in EVENT_TYPES}
Upcast = Callable[[Record], Record]

_NAMESPACE: Final = "oee.orders"
_BASE: Final = ("tokenIn", "tokenOut", "tokenInSymbol", "tokenOutSymbol", "tokenInDecimals",
                "tokenOutDecimals", "amountIn", "slippageBps", "clientOrderId")
_WAITING: Final = ("timeInForce", "expiresAt")
# The record of each v2 orderType and the v2 fields it keeps.
_TERMS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = MappingProxyType({
    "market": ("MarketTerms", _BASE),
    "limit": ("LimitTerms", (*_BASE, *_WAITING, "limitPrice")),
    "sniper": ("SniperTerms", (*_BASE, *_WAITING, "trigger", "minLiquidityUsd", "maxPrice")),
})
_FLAT_TERMS: Final = frozenset({f"{_NAMESPACE}.ExecuteOrder", f"{_NAMESPACE}.OrderAccepted"})


class NotUpcastable(ValueError):
    """An old record that has no meaning in the newer version (e.g. a limit without a price)."""


def nested_terms(flat: Mapping[str, Any]) -> tuple[str, Record]:
    """The v3 `terms` union branch (full name, record) of the flat v2 terms `flat`."""
    order_type = str(flat.get("orderType"))
    if order_type not in _TERMS:
        raise NotUpcastable(f"unknown orderType {order_type!r}")
    name, keep = _TERMS[order_type]
    record = {key: flat[key] for key in keep}
    required = [key for key in ("limitPrice", "trigger") if key in record and record[key] is None]
    if required:
        raise NotUpcastable(f"a {order_type} order without {', '.join(required)}")
    return f"{_NAMESPACE}.{name}", record


def upcast_v2_v3(record: Record) -> Record:
    """v2 -> v3 of order_command and order_event: nest the flat terms."""
    name, payload = record["payload"]
    if name in _FLAT_TERMS:
        payload = {"terms": nested_terms(payload)}
    return {**record, "payload": (name, payload)}


def upcast_event_v2_v3(record: Record) -> Record:
    """v2 -> v3 of order_event: nest the flat terms, and add the status the event implies."""
    name, payload = record["payload"]
    event_type = _EVENT_CLASSES.get(record["type"])
    try:
        status = None if event_type is None else implied_status(event_type, payload.get("stage"))
    except ValueError:
        status = None  # an unknown stage: building the event refuses the record anyway
    return {**upcast_v2_v3(record), "status": None if status is None else status.value}


UPCASTS: Final[Mapping[str, Mapping[int, Upcast]]] = MappingProxyType({
    "order_command": MappingProxyType({2: upcast_v2_v3}),
    "order_event": MappingProxyType({2: upcast_event_v2_v3}),
})
