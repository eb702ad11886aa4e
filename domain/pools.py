"""What every venue offers: the `Pool` and `Venue` protocols, and the values they exchange.

Consumes nothing; produces the contract a venue module (`domain/venues/<name>.py`) implements
and the registry (`domain.venues`) checks, plus the pool-agnostic pieces of venue math: a
`PoolKey`, a `PoolSwap`, `FeeBounds`, and the integer helpers both curves share.

A pool is immutable: a swap returns the next pool instead of changing this one. Only integer
arithmetic touches amounts; Decimals appear only at the edges (spot prices, impacts,
repricing input) and fee rates are exact `Fraction`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from domain.tokens import Token

if TYPE_CHECKING:  # the union of every venue's wire state lives with the registry
    from domain.venues import PoolState


class InsufficientLiquidity(Exception):
    """The pool cannot fill the whole amount (a DLMM swap ran past its last bin)."""


@dataclass(frozen=True, slots=True, order=True)
class PoolKey:
    """Identifies a pool in a market: its venue and its pair, mints in canonical (sorted) order."""

    venue: str
    mint_a: str
    mint_b: str

    @classmethod
    def of(cls, venue: str, mint_1: str, mint_2: str) -> PoolKey:
        first, second = sorted((mint_1, mint_2))
        return cls(venue, first, second)

    def __str__(self) -> str:
        return f"{self.venue}:{self.mint_a}/{self.mint_b}"


@dataclass(frozen=True, slots=True)
class PoolSwap:
    """The outcome of swapping `amount_in` through one pool."""

    amount_in: int
    amount_out: int
    fee: int  # base units of the token in
    price_impact_bps: Decimal  # shortfall of the pre-fee execution price vs the spot price
    pool_after: Pool


@dataclass(frozen=True, slots=True)
class FeeBounds:
    """The least and the most fee rate a pool charges on the amount in of any swap.

    `lowest` is what the price bound of waiting limit orders relies on: no swap of any size
    pays out more than spot * (1 - lowest).
    """

    lowest: Fraction
    highest: Fraction

    def __post_init__(self) -> None:
        if not 0 <= self.lowest <= self.highest < 1:
            raise ValueError(f"fee bounds must satisfy 0 <= lowest <= highest < 1, got {self}")


@runtime_checkable
class Pool(Protocol):
    """What routing, the market, the wire and the feed need from any venue's pool."""

    @property
    def venue(self) -> str: ...

    @property
    def token_x(self) -> Token: ...

    @property
    def token_y(self) -> Token: ...

    @property
    def key(self) -> PoolKey: ...

    def spot_price(self, mint_in: str) -> Decimal:
        """Marginal tokenOut per 1 tokenIn, human units, before fees."""
        ...

    def quote(self, mint_in: str, amount_in: int) -> PoolSwap:
        """Swap `amount_in` base units of `mint_in` for the other token of the pool."""
        ...

    def fee_bounds(self) -> FeeBounds:
        """The range of fee rates this pool can charge, whatever the size or the direction."""
        ...

    def repriced(self, price: Decimal) -> Pool:
        """The pool after arbitrage moved its spot price (token_y per token_x) to `price`."""
        ...

    def decayed(self) -> Pool:
        """The pool after a quiet period: dynamic-fee state relaxes (no-op for fixed fees)."""
        ...

    def scaled(self, bps: int) -> Pool:
        """The pool after LPs changed its liquidity by `bps` (+ deposit, - withdrawal), at the
        same price: its whole depth scales together."""
        ...

    def value_in_y(self) -> int:
        """Everything the pool holds, in base units of token_y at its current price."""
        ...

    def wire_state(self) -> PoolState:
        """The pool's state as market events carry it (tokens and venue travel beside it)."""
        ...


@runtime_checkable
class Venue(Protocol):
    """A venue: its name, its wire state, how a pool is rebuilt from it, its seed pools."""

    @property
    def name(self) -> str: ...

    @property
    def pool_type(self) -> type[Pool]: ...

    @property
    def state_type(self) -> type[PoolState]: ...

    def pool_from(self, token_x: Token, token_y: Token, state: PoolState) -> Pool:
        """The pool a market event describes; ValueError if `state` is another venue's curve
        or is not a valid pool."""
        ...

    def seed_pools(self, reference_usd: Mapping[str, Decimal]) -> tuple[Pool, ...]:
        """This venue's pools in the default market, priced at the reference USD prices."""
        ...


# --- integer helpers shared by the curves ------------------------------------------------------


def raw_price(price: Decimal, token_x: Token, token_y: Token) -> tuple[int, int]:
    """A human price (y per x) as an exact fraction of base units of y per base unit of x."""
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price must be a positive finite decimal, got {price}")
    numerator, denominator = price.as_integer_ratio()
    return numerator * 10**token_y.decimals, denominator * 10**token_x.decimals


def impact_bps(ideal_numerator: int, ideal_denominator: int, amount_out: int) -> Decimal:
    """How far `amount_out` falls short of the ideal output, in bps, floored to 0.01 bps."""
    if ideal_numerator <= 0:
        return Decimal(10_000)  # everything went to fees: nothing comes out
    shortfall = ideal_numerator - amount_out * ideal_denominator
    return Decimal(max(0, shortfall) * 1_000_000 // ideal_numerator).scaleb(-2)


def sells_x(pool: Pool, mint_in: str) -> bool:
    """Whether a swap of `mint_in` sells the pool's x token; ValueError for a foreign mint."""
    if mint_in == pool.token_x.mint:
        return True
    if mint_in == pool.token_y.mint:
        return False
    raise ValueError(f"{mint_in} is not traded by {pool.key}")


def check_pair(token_x: Token, token_y: Token) -> None:
    if token_x.mint == token_y.mint:
        raise ValueError("a pool needs two different tokens")


def check_amount(amount_in: int) -> None:
    # bool is an int subclass and a float would lose lamports: refuse both outright.
    if type(amount_in) is not int or amount_in <= 0:
        raise ValueError(f"amount_in must be a positive integer of base units, got {amount_in!r}")


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
