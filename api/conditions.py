"""The conditional terms of an order request: limit and sniper orders, time in force.

Consumes the text a client sent for `limitPrice`, `timeInForce`, `expiresAt`, `trigger`,
`minLiquidityUsd` and `maxPrice`, the order type and the time now; produces `Conditions`, or
a 400 per offending field (through a `Collector`, so every one is named in one answer).

- limit:  `limitPrice` is required: the least tokenOut per 1 tokenIn the order's own size must
  fetch, net of fees and impact, for it to execute (e.g. SOL->USDC "185.5").
- sniper: `trigger` is required, `pool_created` or `liquidity`; `minLiquidityUsd` is required for
  `liquidity` (and optional for `pool_created`); `maxPrice` is optional: the most tokenIn one
  tokenOut may cost (e.g. USDC->WIF "0.002" = at most 0.002 USDC per WIF).
- either: `timeInForce` GTC (the default) or GTD; GTD needs `expiresAt`, an ISO 8601 time in the
  future (UTC when it has no offset); `expiresAt` alone means GTD.
- market: none of these (it executes at once).

Prices are decimal strings (or JSON numbers, read from their source text), positive, with at
most 18 significant digits: the precision net prices are compared at (see
`domain.orders.conditions`), so a limit of more digits could not be honoured exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from api.errors import invalid
from api.fields import Collector, shown
from domain.orders.conditions import MAX_PRICE_DIGITS, significant_digits
from domain.orders.status import SNIPER_TRIGGERS, OrderType, TimeInForce, Trigger

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_MAX_CHARS: Final = 64
_TIME_EXAMPLE: Final = '"2025-03-01T12:00:00Z"'
_SNIPER_FIELDS: Final = ("trigger", "minLiquidityUsd", "maxPrice")


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


@dataclass(frozen=True, slots=True)
class Conditions:
    """The validated conditional terms; the defaults are a market order's."""

    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expires_at: datetime | None = None
    trigger: Trigger | None = None
    min_liquidity_usd: Decimal | None = None
    max_price: Decimal | None = None

    def fingerprint(self) -> tuple[str, ...]:
        """Spelling-independent: "185.50" and 185.5 are one limit."""
        return tuple(
            "" if value is None else format(value.normalize(), "f")
            if isinstance(value, Decimal) else str(value)
            for value in (self.limit_price, self.time_in_force, self.expires_at, self.trigger,
                          self.min_liquidity_usd, self.max_price)
        )


def parse_conditions(order_type: OrderType | None, fields: ConditionFields, now: datetime,
                     found: Collector) -> Conditions | None:
    """The conditions of an order of `order_type` (None: the type itself was invalid, so only
    the fields' own form is checked); None when `found` collected an error."""
    before = len(found.errors)
    time_in_force, expires_at = _time_in_force(order_type, fields, now, found)
    limit_price = trigger = minimum = max_price = None
    if order_type is OrderType.MARKET:
        _refuse(found, fields.given("limitPrice"), "only for limit orders")
        _refuse(found, fields.given(*_SNIPER_FIELDS), "only for sniper orders")
    elif order_type is OrderType.LIMIT:
        limit_price = found.check(lambda: _price("limitPrice", fields.limit_price, True))
        _refuse(found, fields.given(*_SNIPER_FIELDS), "only for sniper orders")
    elif order_type is OrderType.SNIPER:
        _refuse(found, fields.given("limitPrice"),
                "only for limit orders (a sniper order is guarded by maxPrice)")
        trigger = found.check(lambda: _trigger(fields.trigger))
        minimum = found.check(lambda: _liquidity(trigger, fields.min_liquidity_usd))
        max_price = found.check(lambda: _price("maxPrice", fields.max_price, False))
    if len(found.errors) > before or order_type is None:
        return None
    return Conditions(limit_price, time_in_force, expires_at, trigger, minimum, max_price)


def _time_in_force(order_type: OrderType | None, fields: ConditionFields, now: datetime,
                   found: Collector) -> tuple[TimeInForce, datetime | None]:
    expires_at = found.check(lambda: _expires_at(fields.expires_at, now))
    if fields.time_in_force is None:
        chosen = TimeInForce.GTD if fields.expires_at is not None else TimeInForce.GTC
    else:
        parsed = found.check(lambda: _time_in_force_value(fields.time_in_force))
        if parsed is None:
            return TimeInForce.GTC, None
        chosen = parsed
    if order_type is OrderType.MARKET and (fields.expires_at or chosen is TimeInForce.GTD):
        field = "expiresAt" if fields.expires_at is not None else "timeInForce"
        found.check(lambda: _raise(field, "a market order executes at once: expiry is for "
                                          "limit and sniper orders"))
    elif chosen is TimeInForce.GTD and fields.expires_at is None:
        found.check(lambda: _raise("expiresAt", "is required for timeInForce GTD"))
    elif chosen is TimeInForce.GTC and fields.expires_at is not None:
        found.check(lambda: _raise("expiresAt", "is only for timeInForce GTD (leave "
                                                "timeInForce out, or set it to GTD)"))
    return chosen, expires_at


def _time_in_force_value(text: str | None) -> TimeInForce:
    try:
        return TimeInForce((text or "").upper())
    except ValueError:
        raise invalid("timeInForce", f"unknown timeInForce {shown(text or '')}; expected GTC "
                      "(good till cancelled) or GTD (good till expiresAt)") from None


def _expires_at(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text) if len(text) <= _MAX_CHARS else None
    except ValueError:
        moment = None
    if moment is None:
        raise invalid("expiresAt", f"{shown(text)} is not an ISO 8601 time, e.g. {_TIME_EXAMPLE}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise invalid("expiresAt", f"{text} is in the past (now is {now.isoformat()})")
    return moment


def _trigger(text: str | None) -> Trigger:
    expected = " or ".join(sorted(SNIPER_TRIGGERS))
    if text is None:
        raise invalid("trigger", f"is required for a sniper order: {expected}")
    try:
        trigger = Trigger(text)
    except ValueError:
        trigger = None
    if trigger not in SNIPER_TRIGGERS:
        raise invalid("trigger", f"unknown trigger {shown(text)}; expected {expected}")
    assert trigger is not None
    return trigger


def _liquidity(trigger: Trigger | None, text: str | None) -> Decimal | None:
    if text is None:
        if trigger is Trigger.LIQUIDITY:
            raise invalid("minLiquidityUsd", "is required for trigger liquidity: the pool "
                          'liquidity in USD to wait for, e.g. "50000"')
        return None
    return _decimal("minLiquidityUsd", text, "a USD amount")


def _price(field: str, text: str | None, required: bool) -> Decimal | None:
    if text is None:
        if required:
            raise invalid(field, "is required for a limit order: the least tokenOut per 1 "
                          'tokenIn to execute at, e.g. "185.5"')
        return None
    price = _decimal(field, text, "a price")
    if price == 0:
        raise invalid(field, f"{text} must be greater than zero")
    if significant_digits(price) > MAX_PRICE_DIGITS:
        raise invalid(field, f"{text} has more than {MAX_PRICE_DIGITS} significant digits")
    return price


def _decimal(field: str, text: str, what: str) -> Decimal:
    if len(text) > _MAX_CHARS or not _DECIMAL.fullmatch(text):
        raise invalid(field, f"{shown(text)} is not {what}: write a plain positive decimal "
                      'number, e.g. "185.5"')
    return Decimal(text)


def _refuse(found: Collector, names: list[str], why: str) -> None:
    for name in names:
        found.check(lambda name=name: _raise(name, f"is {why}"))  # type: ignore[misc]


def _raise(field: str, message: str) -> None:
    raise invalid(field, message)
