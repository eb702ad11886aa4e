"""Checks of single request fields, shared by the order and quote endpoints.

Consumes the text a client sent for one field; produces its internal value (a `Token`, base
units, whole bps, an idempotency key) or raises a 400 `InvalidRequest` naming that field.
`Collector` runs several checks and keeps every failure, so one answer lists all of them.
Amounts and slippage are converted with integers from the text: never through a float, and
never through a Decimal context that could round a long input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeVar

from api.errors import ApiError, FieldError, invalid
from domain.tokens import InvalidAmount, Token, TokenRegistry, UnknownToken, parse_amount

T = TypeVar("T")

# Printable ASCII without leading/trailing blanks: the key ends up in logs and in an HTTP
# header, and two keys that look the same must be the same.
_KEY = re.compile(r"[!-~](?:[ -~]{0,126}[!-~])?", re.ASCII)
_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?", re.ASCII)
_MAX_NUMBER_CHARS: Final = 64  # int() of huge digit strings is slow: bound it
_SHOWN_CHARS: Final = 64


class Collector:
    """Runs each field's check and keeps every failure."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def check(self, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except ApiError as exc:
            self.errors.extend(exc.detail)
            return None


def resolve_token(field: str, symbol_or_mint: str, registry: TokenRegistry) -> Token:
    try:
        return registry.resolve(symbol_or_mint)
    except UnknownToken:
        known = ", ".join(token.symbol for token in registry)
        message = f"unknown token {shown(symbol_or_mint)}; give a symbol ({known}) or a mint"
        raise invalid(field, message) from None


def check_distinct(token_in: Token, token_out: Token) -> None:
    # Compared by mint, after resolution: "SOL", "wSOL" and SOL's mint are one token.
    if token_in.mint == token_out.mint:
        message = f"tokenIn and tokenOut are the same token ({token_in.symbol}, {token_in.mint})"
        raise invalid("tokenOut", message)


def amount_units(field: str, text: str, token: Token) -> int:
    """`text` in base units of `token`, exactly (see `domain.tokens.parse_amount`)."""
    try:
        return parse_amount(text, token)
    except InvalidAmount as exc:
        raise invalid(field, str(exc)) from None


@dataclass(frozen=True, slots=True)
class SlippageField:
    """One spelling of the slippage setting: `bps = value * 10**exponent`."""

    name: str
    exponent: int
    unit: str

    def bps(self, text: str) -> int:
        """`text` in whole basis points, or a 400 naming this field; the range is the rule
        book's (`domain.orders.rules`)."""
        if len(text) > _MAX_NUMBER_CHARS:
            raise invalid(self.name, f"{shown(text)} is longer than {_MAX_NUMBER_CHARS} characters")
        match = _DECIMAL.fullmatch(text)
        if match is None:
            message = f"{shown(text)} is not a plain positive decimal number ({self.unit})"
            raise invalid(self.name, message)
        whole, fraction = match["whole"], match["fraction"] or ""
        # Integers only: value = digits / 10**len(fraction), bps = value * 10**exponent.
        scale: int = 10**self.exponent  # annotated: mypy types int ** int as Any
        denominator: int = 10 ** len(fraction)
        bps, remainder = divmod(int(whole + fraction) * scale, denominator)
        if remainder:
            step = self._in_unit(1)
            message = f"{text} is not a whole number of basis points (steps of {step})"
            raise invalid(self.name, message)
        return bps

    def _in_unit(self, bps: int) -> str:
        """`bps` written in this field's unit ("0.0001" for 1 bp as a fraction)."""
        return format(Decimal(bps).scaleb(-self.exponent).normalize(), "f")


SLIPPAGE_BPS: Final = SlippageField("slippageBps", 0, "basis points")
SLIPPAGE_FRACTION: Final = SlippageField("slippage", 4, "a fraction, 0.01 = 100 bps")
SLIPPAGE_PERCENT: Final = SlippageField("slippageTolerance", 2, "a percent, 0.5 = 50 bps")


def check_idempotency_key(field: str, key: str) -> str:
    if not _KEY.fullmatch(key):
        raise invalid(
            field, "must be 1 to 128 printable ASCII characters without leading or trailing blanks"
        )
    return key


def shown(text: str) -> str:
    """`text` quoted for an error message, cut short so a huge input cannot flood the answer."""
    return repr(text) if len(text) <= _SHOWN_CHARS else repr(text[:_SHOWN_CHARS]) + "..."
