"""Is an `ExecuteOrder` well-formed? The edge refuses bad requests by the same rule book
(`rules`); this catches an edge bug before it becomes history (an `InvalidCommand` naming
every broken rule, never an event)."""

from __future__ import annotations

from domain.orders.commands import ExecuteOrder
from domain.orders.errors import InvalidCommand
from domain.orders.rules import terms_errors


def validate(command: ExecuteOrder) -> None:
    """Raise `InvalidCommand` naming every broken rule of `command`'s terms."""
    errors = terms_errors(command.terms)
    if errors:
        raise InvalidCommand("; ".join(f"{e.field}: {e.message}" for e in errors))
