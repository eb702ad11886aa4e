"""Tokens, the registry that resolves symbols and mints, and exact amount conversion.

Consumes what a client typed (a symbol or a mint, a human decimal string) and produces
`Token` values and integer base units. Nothing here touches a float: amounts are parsed
from text with a strict pattern and converted with integer arithmetic, because a JSON
number or a lenient `Decimal(...)` would silently accept `1e400`, `5_000` or `-0`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

# SPL token amounts are u64 on chain; anything larger can never be transferred.
MAX_BASE_UNITS = 2**64 - 1

# Digits, then optionally one dot followed by at least one digit. ASCII only: `\d` would also
# match Arabic-Indic and other Unicode digits, which `int()` happily converts.
_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?", re.ASCII)
# u64 max has 20 digits and no token has more than a couple dozen decimals: a longer string
# is a mistake or an attack (int() of huge digit strings is quadratic).
_MAX_AMOUNT_CHARS = 64


class UnknownToken(LookupError):
    """The symbol or mint is not in the registry."""

    def __init__(self, symbol_or_mint: str) -> None:
        super().__init__(f"unknown token {symbol_or_mint!r}")
        self.symbol_or_mint = symbol_or_mint


class InvalidAmount(ValueError):
    """A human amount that cannot be turned into base units exactly."""


@dataclass(frozen=True, slots=True)
class Token:
    """An SPL token: `decimals` says how many base units make one human unit (10**decimals)."""

    symbol: str
    mint: str
    decimals: int

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= 18:
            raise ValueError(f"{self.symbol}: decimals must be within 0..18, got {self.decimals}")


# Real mainnet mints. Native SOL is traded as wrapped SOL (an SPL token), so "SOL" is the wSOL mint.
SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
BONK = Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5)
JUP = Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6)
RAY = Token("RAY", "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R", 6)
MSOL = Token("mSOL", "mSoLzYCxHdYgdzU16g5QSh3i5K3z3KZK7ytfqcJm7So", 9)

DEFAULT_TOKENS: tuple[Token, ...] = (SOL, USDC, USDT, BONK, JUP, RAY, MSOL)
DEFAULT_ALIASES: Mapping[str, str] = {"WSOL": SOL.mint}


class TokenRegistry:
    """Resolves case-insensitive symbols (and aliases) and exact mints to tokens."""

    __slots__ = ("_by_mint", "_by_symbol")

    def __init__(self, tokens: Iterable[Token], aliases: Mapping[str, str] | None = None) -> None:
        self._by_mint: dict[str, Token] = {}
        self._by_symbol: dict[str, Token] = {}
        for token in tokens:
            if token.mint in self._by_mint or token.symbol.upper() in self._by_symbol:
                raise ValueError(f"duplicate token {token.symbol} ({token.mint})")
            self._by_mint[token.mint] = token
            self._by_symbol[token.symbol.upper()] = token
        for alias, mint in (aliases or {}).items():
            if mint not in self._by_mint:
                raise ValueError(f"alias {alias} points at unregistered mint {mint}")
            self._by_symbol.setdefault(alias.upper(), self._by_mint[mint])

    @classmethod
    def default(cls) -> TokenRegistry:
        """SOL (as wSOL), USDC, USDT, BONK, JUP, RAY and mSOL, with "WSOL" as an alias."""
        return cls(DEFAULT_TOKENS, DEFAULT_ALIASES)

    def resolve(self, symbol_or_mint: str) -> Token:
        """A mint matches exactly (base58 is case-sensitive); a symbol matches in any case."""
        token = self._by_mint.get(symbol_or_mint) or self._by_symbol.get(symbol_or_mint.upper())
        if token is None:
            raise UnknownToken(symbol_or_mint)
        return token

    def learn(self, tokens: Iterable[Token]) -> None:
        """Add the tokens not known yet (a listing on the market topics). A symbol already
        taken by another mint stays with the first: the newcomer resolves by its mint."""
        for token in tokens:
            if token.mint in self._by_mint:
                continue
            self._by_mint[token.mint] = token
            self._by_symbol.setdefault(token.symbol.upper(), token)

    def by_mint(self, mint: str) -> Token:
        token = self._by_mint.get(mint)
        if token is None:
            raise UnknownToken(mint)
        return token

    def __contains__(self, symbol_or_mint: object) -> bool:
        if not isinstance(symbol_or_mint, str):
            return False
        return symbol_or_mint in self._by_mint or symbol_or_mint.upper() in self._by_symbol

    def __iter__(self) -> Iterator[Token]:
        return iter(self._by_mint.values())

    def __len__(self) -> int:
        return len(self._by_mint)


def parse_amount(text: str, token: Token) -> int:
    """Convert a human decimal string ("1.5") into integer base units of `token`, exactly.

    Accepts only digits with an optional dot and fraction digits: no sign, exponent,
    underscore, whitespace or thousands separator. Rejects zero, more fractional digits
    than the token has, and anything above the u64 range of an SPL amount.
    """
    if not isinstance(text, str):  # a float or Decimal here means precision was already lost
        raise InvalidAmount(f"amount must be a decimal string, got {type(text).__name__}")
    match = _AMOUNT.fullmatch(text) if len(text) <= _MAX_AMOUNT_CHARS else None
    if match is None:
        raise InvalidAmount(_malformed(text))
    whole, fraction = match["whole"], match["fraction"] or ""
    if len(fraction) > token.decimals:
        raise InvalidAmount(
            f"amount {text!r} has {len(fraction)} fractional digits; "
            f"{token.symbol} allows at most {token.decimals}"
        )
    units = int(whole + fraction.ljust(token.decimals, "0"))
    if units == 0:
        raise InvalidAmount(f"amount {text!r} must be greater than zero")
    if units > MAX_BASE_UNITS:
        raise InvalidAmount(f"amount {text!r} exceeds the largest {token.symbol} amount (u64)")
    return units


def _malformed(text: str) -> str:
    """Say what is wrong with a string that failed the amount pattern, as precisely as we can."""
    shown = repr(text[:_MAX_AMOUNT_CHARS])
    if not text:
        problem = "is empty"
    elif len(text) > _MAX_AMOUNT_CHARS:
        problem = f"is longer than {_MAX_AMOUNT_CHARS} characters"
    elif any(char.isspace() for char in text):
        problem = "contains whitespace"
    elif text[0] in "+-":
        problem = "has a sign; amounts are positive and written without one"
    elif "e" in text.lower():
        problem = "uses an exponent; write the digits out"
    elif "_" in text or "," in text:
        problem = "contains a digit separator"
    else:
        problem = "is not a plain decimal number"
    return f"amount {shown} {problem} (expected digits with an optional fraction, e.g. \"1.5\")"


def format_amount(base_units: int, token: Token) -> str:
    """Exact human form of `base_units`: "1.5", "0.000001", "42" (no exponent or trailing 0s)."""
    if base_units < 0:
        raise ValueError(f"base units must not be negative, got {base_units}")
    whole, fraction = divmod(base_units, 10**token.decimals)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{str(fraction).rjust(token.decimals, '0').rstrip('0')}"


def to_human(base_units: int, token: Token) -> Decimal:
    """Base units as an exact Decimal in human units (scaleb only moves the exponent)."""
    return Decimal(base_units).scaleb(-token.decimals)


def unit_price(amount_in: int, token_in: Token, amount_out: int, token_out: Token) -> Decimal:
    """tokenOut received per 1 tokenIn, in human units: how limit prices are expressed."""
    if amount_in <= 0:
        raise ValueError("amount_in must be positive")
    return decimal_ratio(amount_out * 10**token_in.decimals, amount_in * 10**token_out.decimals)


def decimal_ratio(numerator: int, denominator: int, significant: int = 18) -> Decimal:
    """numerator/denominator truncated to `significant` digits, computed with integers only.

    No Decimal context is involved, so the result cannot depend on (or change) any
    thread's context; trailing zeros are dropped so 370/2 reads "185", not "185.000...".
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError("decimal_ratio needs numerator >= 0 and denominator > 0")
    if numerator == 0:
        return Decimal(0)
    # n/d lies in [10**(e-1), 10**(e+1)); scaling by 10**(significant-e) leaves a quotient of
    # `significant` or `significant + 1` digits, and one more step fixes the latter.
    shift = significant - (len(str(numerator)) - len(str(denominator)))
    quotient = _scaled_quotient(numerator, denominator, shift)
    if quotient >= 10**significant:
        shift -= 1
        quotient = _scaled_quotient(numerator, denominator, shift)
    while shift > 0 and quotient % 10 == 0:
        quotient //= 10
        shift -= 1
    return Decimal(quotient).scaleb(-shift)


def _scaled_quotient(numerator: int, denominator: int, shift: int) -> int:
    """floor(numerator / denominator * 10**shift)."""
    scale: int = 10 ** abs(shift)  # annotated: mypy types int ** int as Any
    if shift >= 0:
        return numerator * scale // denominator
    return numerator // (denominator * scale)
