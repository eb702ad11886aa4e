"""Raydium: a constant-product pool (x * y = k) with Raydium AMM v4's 25 bps fee.

Consumes integer base units and produces `PoolSwap`s; also maps a pool to and from its wire
state (`ConstantProductState`, a branch of schemas/market_event.avsc) and lists Raydium's
pools in the default market. The fee is taken from the amount in (rounded up, in the pool's
favour, as the on-chain program does) and left in the reserves, so k grows with every swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from math import isqrt
from typing import Final

from domain.pools import (
    FeeBounds,
    PoolKey,
    PoolSwap,
    ceil_div,
    check_amount,
    check_pair,
    impact_bps,
    raw_price,
    sells_x,
)
from domain.tokens import BONK, JUP, MSOL, RAY, SOL, USDC, USDT, Token, decimal_ratio

NAME: Final = "raydium"
# The default market's Raydium pools: deep constant-product pools, by their TVL in USD.
_SEED_TVL_USD: Final = (
    (SOL, USDC, 18_500_000),
    (SOL, USDT, 3_000_000),
    (USDC, USDT, 4_000_000),
    (BONK, SOL, 2_000_000),
    (JUP, SOL, 3_000_000),
    (RAY, USDC, 8_000_000),
    (MSOL, SOL, 10_000_000),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstantProductState:
    """A Raydium pool on the wire: reserves in base units; the fee is numerator/denominator
    of the input."""

    reserve_x: int
    reserve_y: int
    fee_numerator: int
    fee_denominator: int


@dataclass(frozen=True, slots=True)
class RaydiumPool:
    """A Raydium AMM v4 style constant-product pool."""

    token_x: Token
    token_y: Token
    reserve_x: int
    reserve_y: int
    fee_numerator: int = 25
    fee_denominator: int = 10_000

    def __post_init__(self) -> None:
        check_pair(self.token_x, self.token_y)
        if self.reserve_x <= 0 or self.reserve_y <= 0:
            raise ValueError("reserves must be positive")
        if not 0 <= self.fee_numerator < self.fee_denominator:
            raise ValueError("fee must be within [0, 1)")

    @classmethod
    def from_price(cls, token_x: Token, token_y: Token, reserve_x: int,
                   price: Decimal) -> RaydiumPool:
        """A pool holding `reserve_x` base units of x, priced at `price` y per x (human units)."""
        numerator, denominator = raw_price(price, token_x, token_y)
        return cls(token_x, token_y, reserve_x, reserve_x * numerator // denominator)

    @property
    def venue(self) -> str:
        return NAME

    @property
    def key(self) -> PoolKey:
        return PoolKey.of(self.venue, self.token_x.mint, self.token_y.mint)

    def spot_price(self, mint_in: str) -> Decimal:
        value_x = self.reserve_x * 10**self.token_y.decimals
        value_y = self.reserve_y * 10**self.token_x.decimals
        if sells_x(self, mint_in):
            return decimal_ratio(value_y, value_x)
        return decimal_ratio(value_x, value_y)

    def quote(self, mint_in: str, amount_in: int) -> PoolSwap:
        check_amount(amount_in)
        sell_x = sells_x(self, mint_in)
        reserve_in, reserve_out = (
            (self.reserve_x, self.reserve_y) if sell_x else (self.reserve_y, self.reserve_x)
        )
        fee = ceil_div(amount_in * self.fee_numerator, self.fee_denominator)
        net = amount_in - fee
        amount_out = reserve_out * net // (reserve_in + net)  # floor: rounding favours the pool
        # The whole amount in (fee included) stays in the pool; that is how LPs earn the fee.
        new_in, new_out = reserve_in + amount_in, reserve_out - amount_out
        new_x, new_y = (new_in, new_out) if sell_x else (new_out, new_in)
        # The constructor, not dataclasses.replace: this is the hot path of routing.
        after = RaydiumPool(self.token_x, self.token_y, new_x, new_y,
                            self.fee_numerator, self.fee_denominator)
        impact = impact_bps(net * reserve_out, reserve_in, amount_out)
        return PoolSwap(amount_in, amount_out, fee, impact, after)

    def fee_bounds(self) -> FeeBounds:
        rate = Fraction(self.fee_numerator, self.fee_denominator)  # a fixed fee: both bounds
        return FeeBounds(lowest=rate, highest=rate)

    def repriced(self, price: Decimal) -> RaydiumPool:
        # Keep k: an arbitrageur trading the pool to a new price moves along the curve, so
        # the depth stays what LPs deposited (in value it scales with sqrt(price)).
        numerator, denominator = raw_price(price, self.token_x, self.token_y)
        k = self.reserve_x * self.reserve_y
        reserve_x = max(1, isqrt(k * denominator // numerator))
        reserve_y = max(1, isqrt(k * numerator // denominator))
        return replace(self, reserve_x=reserve_x, reserve_y=reserve_y)

    def decayed(self) -> RaydiumPool:
        return self

    def scaled(self, bps: int) -> RaydiumPool:
        # Both reserves by the same factor: the price (their ratio) stays.
        return replace(self, reserve_x=_scale(self.reserve_x, bps),
                       reserve_y=_scale(self.reserve_y, bps))

    def value_in_y(self) -> int:
        return 2 * self.reserve_y  # at the spot price x is worth exactly y: y / x * x

    def wire_state(self) -> ConstantProductState:
        return ConstantProductState(reserve_x=self.reserve_x, reserve_y=self.reserve_y,
                                    fee_numerator=self.fee_numerator,
                                    fee_denominator=self.fee_denominator)


class Raydium:
    """The Raydium venue: constant-product pools carried as `ConstantProductState`."""

    name: Final = NAME
    pool_type: Final = RaydiumPool
    state_type: Final = ConstantProductState

    def pool_from(self, token_x: Token, token_y: Token, state: object) -> RaydiumPool:
        if not isinstance(state, ConstantProductState):
            raise ValueError(f"{NAME} does not run {type(state).__name__} pools")
        return RaydiumPool(token_x, token_y, state.reserve_x, state.reserve_y,
                           state.fee_numerator, state.fee_denominator)

    def seed_pools(self, reference_usd: Mapping[str, Decimal]) -> tuple[RaydiumPool, ...]:
        # Half the TVL on each side, so that the pool's price is the reference ratio.
        usd = reference_usd
        with localcontext(Context(prec=34)):  # the caller's context is restored on exit
            return tuple(
                RaydiumPool.from_price(x, y, int(Decimal(tvl) / 2 / usd[x.mint] * 10**x.decimals),
                                       usd[x.mint] / usd[y.mint])
                for x, y, tvl in _SEED_TVL_USD
            )


RAYDIUM: Final = Raydium()


def _scale(amount: int, bps: int) -> int:
    return max(1, amount * (10_000 + bps) // 10_000)
