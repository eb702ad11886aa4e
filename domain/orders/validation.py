"""Is an `ExecuteOrder` well-formed? The edge validates requests; this catches an edge bug
before it becomes history (an `InvalidCommand`, never an event).

Which terms go with which order type:
- market: none of the conditional terms, and no expiry (it executes at once);
- limit:  `limit_price` (positive, at most 18 significant digits);
- sniper: `trigger` (pool_created | liquidity); `min_liquidity_usd` (required for liquidity,
  optional for pool_created, never negative); optional `max_price` (positive).
Any order that waits may be GTD, which needs `expires_at` (and GTC must not have one).
"""

from __future__ import annotations

from decimal import Decimal

from domain.orders.amounts import BPS
from domain.orders.commands import ExecuteOrder
from domain.orders.conditions import MAX_PRICE_DIGITS, significant_digits
from domain.orders.errors import InvalidCommand
from domain.orders.status import SNIPER_TRIGGERS, OrderType, TimeInForce, Trigger

_SNIPER_TERMS = ("trigger", "min_liquidity_usd", "max_price")


def validate(command: ExecuteOrder) -> None:
    """Raise `InvalidCommand` naming what is wrong with `command`."""
    if command.amount_in <= 0:
        raise InvalidCommand(f"amount_in must be positive, got {command.amount_in}")
    if not 0 <= command.slippage_bps <= BPS:
        raise InvalidCommand(f"slippage_bps must be within 0..{BPS}, got {command.slippage_bps}")
    if command.token_in == command.token_out:
        raise InvalidCommand(f"token_in and token_out are both {command.token_in}")
    for decimals in (command.token_in_decimals, command.token_out_decimals):
        if not 0 <= decimals <= 255:  # an SPL mint's decimals is a u8
            raise InvalidCommand(f"token decimals must be within 0..255, got {decimals}")
    _check_expiry(command)
    match command.order_type:
        case OrderType.MARKET:
            _absent(command, "limit_price", *_SNIPER_TERMS)
            if command.time_in_force is not TimeInForce.GTC:
                raise InvalidCommand("a market order executes at once: it cannot be GTD")
        case OrderType.LIMIT:
            _absent(command, *_SNIPER_TERMS)
            _price("limit_price", command.limit_price, required=True)
        case OrderType.SNIPER:
            _absent(command, "limit_price")
            _sniper(command)


def _check_expiry(command: ExecuteOrder) -> None:
    expires_at = command.expires_at
    if command.time_in_force is TimeInForce.GTD and expires_at is None:
        raise InvalidCommand("a GTD order needs expires_at")
    if command.time_in_force is TimeInForce.GTC and expires_at is not None:
        raise InvalidCommand("a GTC order has no expires_at; make it GTD")
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidCommand("expires_at must be timezone-aware")


def _sniper(command: ExecuteOrder) -> None:
    if command.trigger not in SNIPER_TRIGGERS:
        raise InvalidCommand(f"a sniper order needs a trigger of {sorted(SNIPER_TRIGGERS)}, "
                             f"got {command.trigger}")
    minimum = command.min_liquidity_usd
    if command.trigger is Trigger.LIQUIDITY and minimum is None:
        raise InvalidCommand("a liquidity trigger needs min_liquidity_usd")
    if minimum is not None and not (minimum.is_finite() and minimum >= 0):
        raise InvalidCommand(f"min_liquidity_usd must be a finite amount >= 0, got {minimum}")
    _price("max_price", command.max_price, required=False)


def _price(name: str, value: Decimal | None, *, required: bool) -> None:
    if value is None:
        if required:
            raise InvalidCommand(f"{name} is required")
        return
    if not (value.is_finite() and value > 0):
        raise InvalidCommand(f"{name} must be a positive finite price, got {value}")
    if significant_digits(value) > MAX_PRICE_DIGITS:
        raise InvalidCommand(f"{name} {value} has more than {MAX_PRICE_DIGITS} significant digits")


def _absent(command: ExecuteOrder, *names: str) -> None:
    given = [name for name in names if getattr(command, name) is not None]
    if given:
        raise InvalidCommand(f"a {command.order_type} order takes no {', '.join(given)}")
