"""The rule book of an order's terms, written once: what the edge refuses and the decider
re-checks. Pure.

Consumes the terms as values keyed by their field names (`amount_in`, `limit_price`..., as
`terms` declares them; the API and the Avro schema spell them in camelCase), the order type
and, at the edge, the time now; produces `FieldError`s, one per broken rule, keyed by the
field at fault. The API only parses text into values and renders these errors; `decide`
raises them as an `InvalidCommand` (an edge bug must never become history). One range per
rule:

- `amount_in`: 1 .. 2**63-1 base units. SPL amounts are u64 on chain, but the event log carries
  amounts as Avro `long` (signed 64 bits): an order beyond that could not be written at all.
- `slippage_bps`: 1 .. 5000. Zero tolerance fails every swap whose price moves by one unit
  between quote and landing; beyond 50% "slippage protection" protects nothing (a sandwich
  may take half the order). The arithmetic (`amounts.min_amount_out`) is defined on 0..10000,
  the rule is narrower on purpose.
- `token_in_decimals` / `token_out_decimals`: 0 .. 18. A mint's decimals is a u8 on Solana, but no
  real SPL token has more than 18, and the price math (`tokens.unit_price`, 18 significant
  digits) and `tokens.Token` assume at most 18.
- prices (`limit_price`, `max_price`): positive, finite, at most 18 significant digits, the grid
  net prices are compared on (see `conditions`); `min_liquidity_usd`: finite, >= 0, at most 18
  significant digits too. Digits are counted exactly at any length (no Decimal context).
- which terms go with which order type (`TERMS_OF`): market none (it executes at once), limit
  `limit_price` (required), sniper `trigger` (pool_created | liquidity; liquidity requires
  `min_liquidity_usd`) and optional `max_price`; limit and sniper may be GTD, which requires
  `expires_at` (and GTC must not have one); `expires_at` is timezone-aware and, at the edge,
  in the future.
- parents (twap, dca; `domain.orders.schedule`): `interval_s` whole seconds >= 1 (the edge
  also holds it to its configured minimum); twap `slices` 1 .. MAX_SLICES and `amount_in` at
  least one base unit per slice; dca `amount_per_slice` 1 .. `amount_in`, at most MAX_SLICES
  slices, `end_at` timezone-aware and, at the edge, in the future; the optional slice bounds
  `min_slice_price` <= `max_slice_price` are prices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from domain.orders.schedule import MAX_SLICES
from domain.orders.status import SNIPER_TRIGGERS, OrderType, TimeInForce, Trigger
from domain.orders.terms import TERMS_OF_TYPE, BaseTerms, WaitingTerms, extra_fields

MIN_AMOUNT: Final = 1
MAX_AMOUNT: Final = 2**63 - 1  # Avro long: what the event log can carry
MIN_SLIPPAGE_BPS: Final = 1
MAX_SLIPPAGE_BPS: Final = 5_000
MAX_TOKEN_DECIMALS: Final = 18
MAX_PRICE_DIGITS: Final = 18

_WAITING_TERMS: Final = frozenset(extra_fields(WaitingTerms))
# The terms each order type takes beyond the common ones (tokens, amount, slippage, key),
# as its terms type declares them.
TERMS_OF: Final[Mapping[OrderType, frozenset[str]]] = {
    order_type: frozenset(extra_fields(cls)) for order_type, cls in TERMS_OF_TYPE.items()
}
CONDITIONAL_TERMS: Final = frozenset().union(*TERMS_OF.values())


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule, named by the field at fault (its name in `terms`)."""

    field: str
    message: str


Errors = tuple[FieldError, ...]


def significant_digits(value: Decimal) -> int:
    """How many significant digits `value` has ("185.50" has 4: trailing zeros do not count).

    Counted on the digit tuple itself: `normalize()` would round to the context's precision
    first (28 digits), so "1000...0001" of 40 digits would count as 1."""
    digits = value.as_tuple().digits
    stripped = "".join(map(str, digits)).strip("0")
    return len(stripped)


# --- one value, one rule ------------------------------------------------------------------------


def amount_problem(units: int) -> str | None:
    if units < MIN_AMOUNT:
        return "must be greater than zero"
    if units > MAX_AMOUNT:
        return (f"{units} base units is more than an order can carry ({MAX_AMOUNT}, 2**63-1: "
                "the event log stores amounts as a signed 64-bit long; SPL amounts are u64)")
    return None


def slippage_problem(bps: int) -> str | None:
    if not MIN_SLIPPAGE_BPS <= bps <= MAX_SLIPPAGE_BPS:
        return f"{bps} bps is out of range: {MIN_SLIPPAGE_BPS} to {MAX_SLIPPAGE_BPS} bps"
    return None


def decimals_problem(decimals: int) -> str | None:
    if not 0 <= decimals <= MAX_TOKEN_DECIMALS:
        return f"{decimals} is not a whole number from 0 to {MAX_TOKEN_DECIMALS}"
    return None


def price_problem(price: Decimal) -> str | None:
    if not price.is_finite() or price <= 0:
        return f"{price} must be a finite price greater than zero"
    return _digits_problem(price)


def liquidity_problem(usd: Decimal) -> str | None:
    if not usd.is_finite() or usd < 0:
        return f"{usd} must be a finite USD amount, zero or more"
    return _digits_problem(usd)


def interval_problem(seconds: int, minimum: int = 1) -> str | None:
    if seconds < minimum:
        return f"{seconds} s is too short: at least {minimum} s between two slices"
    return None


def slices_problem(slices: int) -> str | None:
    if not 1 <= slices <= MAX_SLICES:
        return f"{slices} is out of range: 1 to {MAX_SLICES} slices"
    return None


def _digits_problem(value: Decimal) -> str | None:
    if significant_digits(value) > MAX_PRICE_DIGITS:
        return f"{value} has more than {MAX_PRICE_DIGITS} significant digits"
    return None


_VALUE_RULES: Final[Mapping[str, Callable[[object], str | None]]] = {
    "amount_in": lambda v: amount_problem(v) if isinstance(v, int) else "must be an integer",
    "slippage_bps": lambda v: slippage_problem(v) if isinstance(v, int) else "must be an integer",
    "token_in_decimals": lambda v: decimals_problem(v) if isinstance(v, int) else "not an integer",
    "token_out_decimals": lambda v: decimals_problem(v) if isinstance(v, int) else "not an integer",
    "limit_price": lambda v: price_problem(v) if isinstance(v, Decimal) else "must be a decimal",
    "max_price": lambda v: price_problem(v) if isinstance(v, Decimal) else "must be a decimal",
    "min_liquidity_usd": lambda v: (liquidity_problem(v) if isinstance(v, Decimal)
                                  else "must be a decimal"),
    "min_slice_price": lambda v: price_problem(v) if isinstance(v, Decimal) else "must be a decimal",
    "max_slice_price": lambda v: price_problem(v) if isinstance(v, Decimal) else "must be a decimal",
    "interval_s": lambda v: interval_problem(v) if isinstance(v, int) else "must be an integer",
    "slices": lambda v: slices_problem(v) if isinstance(v, int) else "must be an integer",
    "amount_per_slice": lambda v: (amount_problem(v) if isinstance(v, int)
                                   else "must be an integer"),
}


# --- the whole order --------------------------------------------------------------------------


def order_errors(
    order_type: OrderType, values: Mapping[str, object], *, now: datetime | None = None,
    unreadable: frozenset[str] = frozenset(),
) -> Errors:
    """Every broken rule of an order of `order_type` whose given terms are `values` (field
    name -> value; a term not given is absent, never None). `unreadable`: fields the client
    gave that could not be parsed (already reported by the edge: no rule speaks of them
    again). `now`: refuse an expiry that is not in the future (the edge); None skips it (the
    decider: a GTD order accepted late expires at once instead)."""
    errors = [FieldError(name, message) for name, value in values.items()
              if name in _VALUE_RULES and (message := _VALUE_RULES[name](value)) is not None]
    given = frozenset(values) | unreadable
    errors += _misplaced(order_type, values, given)
    errors += _type_rules(order_type, values, given)
    errors += _expiry_rules(order_type, values, given, now)
    errors += _schedule_rules(order_type, values, given, now)
    if "token_in" in values and values.get("token_in") == values.get("token_out"):
        errors.append(FieldError("token_out", "tokenIn and tokenOut are the same token"))
    return tuple(errors)


def _misplaced(order_type: OrderType, values: Mapping[str, object],
               given: frozenset[str]) -> list[FieldError]:
    """Conditional terms the order type does not take (GTC, the default, is no term)."""
    errors = []
    for name in sorted(given & (CONDITIONAL_TERMS - TERMS_OF[order_type])):
        if name == "time_in_force" and values.get(name) is TimeInForce.GTC:
            continue
        if order_type is OrderType.MARKET and name in _WAITING_TERMS:
            why = "a market order executes at once: expiry is for limit and sniper orders"
        else:
            takers = " and ".join(str(t) for t in OrderType if name in TERMS_OF[t])
            why = f"is only for {takers} orders"
            if name == "limit_price" and order_type is OrderType.SNIPER:
                why += " (a sniper order is guarded by maxPrice)"
        errors.append(FieldError(name, why))
    return errors


def _type_rules(order_type: OrderType, values: Mapping[str, object],
                given: frozenset[str]) -> list[FieldError]:
    errors = []
    if order_type is OrderType.LIMIT and "limit_price" not in given:
        errors.append(FieldError("limit_price", "is required for a limit order: the least "
                                 'tokenOut per 1 tokenIn to execute at, e.g. "185.5"'))
    if order_type is OrderType.SNIPER:
        expected = " or ".join(sorted(SNIPER_TRIGGERS))
        trigger = values.get("trigger")
        if "trigger" not in given:
            errors.append(FieldError("trigger", f"is required for a sniper order: {expected}"))
        elif "trigger" in values and trigger not in SNIPER_TRIGGERS:
            errors.append(FieldError("trigger", f"unknown trigger {trigger}; expected "
                                     f"{expected}"))
        if trigger is Trigger.LIQUIDITY and "min_liquidity_usd" not in given:
            errors.append(FieldError("min_liquidity_usd", "is required for trigger liquidity: the "
                                     'pool liquidity in USD to wait for, e.g. "50000"'))
    return errors


def _expiry_rules(order_type: OrderType, values: Mapping[str, object], given: frozenset[str],
                  now: datetime | None) -> list[FieldError]:
    if order_type is OrderType.MARKET:
        return []  # expiry terms on a market order are misplaced (see _misplaced)
    time_in_force, expires_at = values.get("time_in_force"), values.get("expires_at")
    if time_in_force is TimeInForce.GTD and "expires_at" not in given:
        return [FieldError("expires_at", "is required for timeInForce GTD")]
    if time_in_force is not TimeInForce.GTD and "expires_at" in given:
        return [FieldError("expires_at", "is only for timeInForce GTD (leave timeInForce out, "
                           "or set it to GTD)")]
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            return [FieldError("expires_at", "must be timezone-aware")]
        if now is not None and expires_at <= now:
            return [FieldError("expires_at", f"{expires_at.isoformat()} is in the past (now is "
                               f"{now.isoformat()})")]
    return []


_SCHEDULE_REQUIRED: Final[Mapping[OrderType, tuple[tuple[str, str], ...]]] = {
    OrderType.TWAP: (("interval_s", "seconds between two slices, e.g. 60"),
                     ("slices", "how many child orders amountIn is split into, e.g. 10")),
    OrderType.DCA: (("interval_s", "seconds between two slices, e.g. 3600"),
                    ("amount_per_slice", 'tokenIn per slice in human units, e.g. "0.5"')),
}


def _schedule_rules(order_type: OrderType, values: Mapping[str, object], given: frozenset[str],
                    now: datetime | None) -> list[FieldError]:
    """A parent's (twap, dca) schedule: required terms, slices that fit the amount, bounds."""
    if order_type not in _SCHEDULE_REQUIRED:
        return []
    errors = [FieldError(name, f"is required for a {order_type} order: {what}")
              for name, what in _SCHEDULE_REQUIRED[order_type] if name not in given]
    amount, slices = values.get("amount_in"), values.get("slices")
    per_slice = values.get("amount_per_slice")
    if isinstance(amount, int) and isinstance(slices, int) and 0 < slices <= MAX_SLICES:
        if amount < slices:
            errors.append(FieldError("slices", f"{slices} slices of {amount} base units would "
                                     "leave a slice empty: at most one slice per base unit"))
    if isinstance(amount, int) and isinstance(per_slice, int) and per_slice > 0 and amount > 0:
        if per_slice > amount:
            errors.append(FieldError("amount_per_slice", "is more than amountIn"))
        elif -(-amount // per_slice) > MAX_SLICES:
            errors.append(FieldError("amount_per_slice", f"makes {-(-amount // per_slice)} "
                                     f"slices of amountIn: at most {MAX_SLICES}"))
    low, high = values.get("min_slice_price"), values.get("max_slice_price")
    if isinstance(low, Decimal) and isinstance(high, Decimal) and low > high:
        errors.append(FieldError("min_slice_price", f"{low} is above maxSlicePrice {high}"))
    end_at = values.get("end_at")
    if isinstance(end_at, datetime):
        if end_at.tzinfo is None:
            errors.append(FieldError("end_at", "must be timezone-aware"))
        elif now is not None and end_at <= now:
            errors.append(FieldError("end_at", f"{end_at.isoformat()} is in the past (now is "
                                     f"{now.isoformat()})"))
    return errors


def terms_errors(terms: BaseTerms) -> Errors:
    """Every broken rule of accepted-looking `terms` (the decider's check of the edge)."""
    values = {field.name: getattr(terms, field.name) for field in dataclasses.fields(terms)
              if getattr(terms, field.name) is not None}
    return order_errors(terms.order_type, values)
