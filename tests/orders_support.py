"""Building order commands in tests from flat keyword arguments (as the v2 commands were
written): the meta fields go to the command, the rest to the terms of the order type."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from domain.orders.commands import ExecuteOrder
from domain.orders.errors import OrderDomainError
from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state
from domain.orders.status import OrderStatus, OrderType
from domain.orders.terms import TERMS_OF_TYPE, OrderTerms

_META = frozenset(field.name for field in fields(ExecuteOrder)) - {"terms"}  # not terms


def terms_of(order_type: OrderType = OrderType.MARKET, **fields: Any) -> OrderTerms:
    """The terms of `order_type`; a field the type does not take is a TypeError."""
    return TERMS_OF_TYPE[order_type](**fields)


def execute_order(order_type: OrderType = OrderType.MARKET, **fields: Any) -> ExecuteOrder:
    meta = {name: value for name, value in fields.items() if name in _META}
    terms = {name: value for name, value in fields.items() if name not in _META}
    return ExecuteOrder(**meta, terms=terms_of(order_type, **terms))


class WriterStatuses:
    """What a writer records as each event's status: the fold of the order's history so far
    (for harnesses that write events themselves, possibly one at a time). A duplicate gets the
    status recorded with its first copy; an event that breaks the history (a gap, written on
    purpose) the last status known: a reader refuses it for the gap anyway."""

    def __init__(self) -> None:
        self._states: dict[str, OrderState] = {}
        self._recorded: dict[tuple[str, int], OrderStatus] = {}

    def after(self, event: Event) -> OrderStatus:
        known = self._recorded.get((event.order_id, event.seq))
        if known is not None:
            return known
        before = self._states.get(event.order_id) or initial_state(event.order_id)
        try:
            state = evolve(before, event)
        except OrderDomainError:
            return before.status or OrderStatus.PENDING
        self._states[event.order_id] = state
        assert state.status is not None
        self._recorded[(event.order_id, event.seq)] = state.status
        return state.status
