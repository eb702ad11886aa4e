"""Building order commands in tests from flat keyword arguments (as the v2 commands were
written): the meta fields go to the command, the rest to the terms of the order type."""

from __future__ import annotations

from typing import Any

from domain.orders.commands import ExecuteOrder
from domain.orders.status import OrderType
from domain.orders.terms import TERMS_OF_TYPE, OrderTerms

_META = frozenset({"command_id", "order_id", "issued_at", "correlation_id", "causation_id"})


def terms_of(order_type: OrderType = OrderType.MARKET, **fields: Any) -> OrderTerms:
    """The terms of `order_type`; a field the type does not take is a TypeError."""
    return TERMS_OF_TYPE[order_type](**fields)


def execute_order(order_type: OrderType = OrderType.MARKET, **fields: Any) -> ExecuteOrder:
    meta = {name: value for name, value in fields.items() if name in _META}
    terms = {name: value for name, value in fields.items() if name not in _META}
    return ExecuteOrder(**meta, terms=terms_of(order_type, **terms))
