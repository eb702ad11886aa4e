"""The conditional terms of an order request, parsed: limit and sniper orders, time in force.

Consumes the text a client sent for `limitPrice`, `timeInForce`, `expiresAt`, `trigger`,
`minLiquidityUsd` and `maxPrice`; produces their values keyed by contract name (Decimal,
TimeInForce, datetime, Trigger) and the names of those that could not be read, each of which
has a 400 in the `Collector`. Only the form is checked here: which term goes with which
order type, ranges and digits are the domain's rule book (`domain.orders.rules`).

- `expiresAt` is an ISO 8601 time (UTC when it has no offset); alone it means GTD;
- prices and USD amounts are plain positive decimal strings (or JSON numbers, read from
  their source text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from api.errors import invalid
from api.fields import Collector, shown
from domain.orders.status import SNIPER_TRIGGERS, TimeInForce, Trigger

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_MAX_CHARS: Final = 64
_TIME_EXAMPLE: Final = '"2025-03-01T12:00:00Z"'
# The client's name of each conditional term -> the terms' field name.
_FIELD: Final = {"limitPrice": "limit_price", "maxPrice": "max_price",
                 "minLiquidityUsd": "min_liquidity_usd", "timeInForce": "time_in_force",
                 "expiresAt": "expires_at", "trigger": "trigger"}


@dataclass(frozen=True, slots=True)
class ConditionFields:
    """The conditional fields as the client sent them (None: not given)."""

    limit_price: str | None = None
    time_in_force: str | None = None
    expires_at: str | None = None
    trigger: str | None = None
    min_liquidity_usd: str | None = None
    max_price: str | None = None

    def given(self, *names: str) -> list[str]:
        """Which of the API field `names` the client set."""
        values = {"limitPrice": self.limit_price, "trigger": self.trigger,
                  "minLiquidityUsd": self.min_liquidity_usd, "maxPrice": self.max_price,
                  "timeInForce": self.time_in_force, "expiresAt": self.expires_at}
        return [name for name in names if values[name] is not None]

    def text(self, name: str) -> str:
        value = {"limitPrice": self.limit_price, "trigger": self.trigger,
                 "minLiquidityUsd": self.min_liquidity_usd, "maxPrice": self.max_price,
                 "timeInForce": self.time_in_force, "expiresAt": self.expires_at}[name]
        assert value is not None
        return value


def parse_conditions(fields: ConditionFields,
                     found: Collector) -> tuple[dict[str, object], frozenset[str]]:
    """(the values of the conditional terms given, the names of those given but unreadable),
    both keyed by the terms' field names (`limit_price`...)."""
    values: dict[str, object] = {}
    readers = {"limitPrice": lambda text: _decimal("limitPrice", text, "a price"),
               "maxPrice": lambda text: _decimal("maxPrice", text, "a price"),
               "minLiquidityUsd": lambda text: _decimal("minLiquidityUsd", text, "a USD amount"),
               "timeInForce": _time_in_force_value, "expiresAt": _expires_at,
               "trigger": _trigger}
    unreadable = set()
    for name in fields.given(*readers):
        text = fields.text(name)
        value = found.check(lambda read=readers[name], text=text: read(text))  # type: ignore[misc]
        if value is None:
            unreadable.add(_FIELD[name])
        else:
            values[_FIELD[name]] = value
    if not fields.given("timeInForce") and fields.given("expiresAt"):
        values["time_in_force"] = TimeInForce.GTD  # expiresAt alone means GTD
    return values, frozenset(unreadable)


def _time_in_force_value(text: str) -> TimeInForce:
    try:
        return TimeInForce(text.upper())
    except ValueError:
        raise invalid("timeInForce", f"unknown timeInForce {shown(text)}; expected GTC "
                      "(good till cancelled) or GTD (good till expiresAt)") from None


def _expires_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text) if len(text) <= _MAX_CHARS else None
    except ValueError:
        moment = None
    if moment is None:
        raise invalid("expiresAt", f"{shown(text)} is not an ISO 8601 time, e.g. {_TIME_EXAMPLE}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _trigger(text: str) -> Trigger:
    try:
        return Trigger(text)
    except ValueError:
        expected = " or ".join(sorted(SNIPER_TRIGGERS))
        raise invalid("trigger", f"unknown trigger {shown(text)}; expected {expected}") from None


def _decimal(field: str, text: str, what: str) -> Decimal:
    if len(text) > _MAX_CHARS or not _DECIMAL.fullmatch(text):
        raise invalid(field, f"{shown(text)} is not {what}: write a plain positive decimal "
                      'number, e.g. "185.5"')
    return Decimal(text)
