"""Venue math: what a pool pays for an amount in, and the pool it leaves behind.

Consumes integer base units and produces `PoolSwap` values; pools are immutable, so a swap
returns the next pool instead of changing this one. Two venues share the `Pool` protocol:

- `RaydiumPool`: a constant-product pool (x * y = k) with Raydium AMM v4's 25 bps fee, taken
  from the amount in (rounded up, in the pool's favour, as the on-chain program does) and left
  in the reserves, so k grows with every swap.
- `MeteoraPool`: a DLMM-like pool. Liquidity sits in discrete bins whose prices are
  (1 + bin_step)^id; inside one bin the price is constant (constant sum), so a swap drains
  bins one by one, moving the price a bin step each time. The fee is a base fee plus a
  variable fee that grows with the square of the volatility accumulator: the volatility
  carried from earlier swaps plus one per bin this swap has crossed, as Meteora computes it
  bin by bin. Simplification: every bin holds the same value (a "spot" distribution), the
  accumulator decays only when `decayed()` is called (time is not a pool's business), and
  fees go to LPs outside the bins, as in DLMM.

Only integer arithmetic touches amounts: prices inside a DLMM pool are 128-bit fixed point
integers, and Decimals appear only at the edges (spot prices, impacts, repricing input).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Context, Decimal
from math import isqrt
from typing import Protocol

from domain.tokens import Token, decimal_ratio

FEE_PIPS = 1_000_000  # DLMM fee rates are in millionths: 1 bps = 100 pips
MAX_FEE_PIPS = 100_000  # Meteora caps base + variable fee at 10%
MAX_VOLATILITY = 10_000  # bins; the fee cap binds long before this, it only bounds the integer
_FRAC = 128  # fractional bits of DLMM bin prices (Meteora itself uses Q64.64)
_ONE = 1 << _FRAC


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


class Pool(Protocol):
    """What routing needs from any venue's pool."""

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

    def repriced(self, price: Decimal) -> Pool:
        """The pool after arbitrage moved its spot price (token_y per token_x) to `price`."""
        ...

    def decayed(self) -> Pool:
        """The pool after a quiet period: dynamic-fee state relaxes (no-op for fixed fees)."""
        ...


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
        _check_pair(self.token_x, self.token_y)
        if self.reserve_x <= 0 or self.reserve_y <= 0:
            raise ValueError("reserves must be positive")
        if not 0 <= self.fee_numerator < self.fee_denominator:
            raise ValueError("fee must be within [0, 1)")

    @classmethod
    def from_price(cls, token_x: Token, token_y: Token, reserve_x: int,
                   price: Decimal) -> RaydiumPool:
        """A pool holding `reserve_x` base units of x, priced at `price` y per x (human units)."""
        numerator, denominator = _raw_price(price, token_x, token_y)
        return cls(token_x, token_y, reserve_x, reserve_x * numerator // denominator)

    @property
    def venue(self) -> str:
        return "raydium"

    @property
    def key(self) -> PoolKey:
        return PoolKey.of(self.venue, self.token_x.mint, self.token_y.mint)

    def spot_price(self, mint_in: str) -> Decimal:
        value_x = self.reserve_x * 10**self.token_y.decimals
        value_y = self.reserve_y * 10**self.token_x.decimals
        if _sells_x(self, mint_in):
            return decimal_ratio(value_y, value_x)
        return decimal_ratio(value_x, value_y)

    def quote(self, mint_in: str, amount_in: int) -> PoolSwap:
        _check_amount(amount_in)
        sell_x = _sells_x(self, mint_in)
        reserve_in, reserve_out = (
            (self.reserve_x, self.reserve_y) if sell_x else (self.reserve_y, self.reserve_x)
        )
        fee = _ceil_div(amount_in * self.fee_numerator, self.fee_denominator)
        net = amount_in - fee
        amount_out = reserve_out * net // (reserve_in + net)  # floor: rounding favours the pool
        # The whole amount in (fee included) stays in the pool; that is how LPs earn the fee.
        new_in, new_out = reserve_in + amount_in, reserve_out - amount_out
        new_x, new_y = (new_in, new_out) if sell_x else (new_out, new_in)
        # The constructor, not dataclasses.replace: this is the hot path of routing.
        after = RaydiumPool(self.token_x, self.token_y, new_x, new_y,
                            self.fee_numerator, self.fee_denominator)
        impact = _impact_bps(net * reserve_out, reserve_in, amount_out)
        return PoolSwap(amount_in, amount_out, fee, impact, after)

    def repriced(self, price: Decimal) -> RaydiumPool:
        # Keep k: an arbitrageur trading the pool to a new price moves along the curve, so
        # the depth stays what LPs deposited (in value it scales with sqrt(price)).
        numerator, denominator = _raw_price(price, self.token_x, self.token_y)
        k = self.reserve_x * self.reserve_y
        reserve_x = max(1, isqrt(k * denominator // numerator))
        reserve_y = max(1, isqrt(k * numerator // denominator))
        return replace(self, reserve_x=reserve_x, reserve_y=reserve_y)

    def decayed(self) -> RaydiumPool:
        return self


@dataclass(frozen=True, slots=True)
class MeteoraPool:
    """A Meteora DLMM style pool: uniform liquidity over bins `lower_id..upper_id`.

    Bin `id` has the price (1 + bin_step_bps / 10_000) ** id in base units of y per base unit
    of x. Bins below the active one hold only y, bins above only x, each worth
    `bin_liquidity` base units of y; the active bin holds `active_x` and `active_y`.
    """

    token_x: Token
    token_y: Token
    bin_step_bps: int
    active_id: int
    active_x: int
    active_y: int
    bin_liquidity: int
    lower_id: int
    upper_id: int
    base_fee_pips: int
    variable_fee_control: int = 1
    volatility: int = 0  # accumulator carried from earlier swaps, in bins
    _price: int = field(init=False, repr=False, compare=False)  # active bin price, Q128

    def __post_init__(self) -> None:
        _check_pair(self.token_x, self.token_y)
        if not 1 <= self.bin_step_bps <= 500:
            raise ValueError("bin step must be within 1..500 bps")
        if not self.lower_id <= self.active_id <= self.upper_id:
            raise ValueError("the active bin must lie within the liquidity range")
        if min(self.active_x, self.active_y, self.volatility) < 0 or self.bin_liquidity <= 0:
            raise ValueError("reserves, liquidity and volatility must not be negative")
        if not 0 <= self.base_fee_pips <= MAX_FEE_PIPS or self.variable_fee_control < 0:
            raise ValueError("fees must be within 0..10%")
        object.__setattr__(self, "_price", _bin_price(self.bin_step_bps, self.active_id))

    @classmethod
    def around(cls, token_x: Token, token_y: Token, price: Decimal, *, bin_step_bps: int,
               bin_liquidity: int, bins_each_side: int, base_fee_pips: int,
               variable_fee_control: int = 1) -> MeteoraPool:
        """A pool whose active bin is the one nearest `price` (y per x, human units)."""
        active_id = _nearest_bin(price, token_x, token_y, bin_step_bps)
        active_x, active_y = _half_and_half(bin_liquidity, _bin_price(bin_step_bps, active_id))
        return cls(token_x, token_y, bin_step_bps, active_id, active_x, active_y, bin_liquidity,
                   active_id - bins_each_side, active_id + bins_each_side, base_fee_pips,
                   variable_fee_control)

    @property
    def venue(self) -> str:
        return "meteora"

    @property
    def key(self) -> PoolKey:
        return PoolKey.of(self.venue, self.token_x.mint, self.token_y.mint)

    def spot_price(self, mint_in: str) -> Decimal:
        value_x = _ONE * 10**self.token_y.decimals
        value_y = self.price_q128 * 10**self.token_x.decimals
        if _sells_x(self, mint_in):
            return decimal_ratio(value_y, value_x)
        return decimal_ratio(value_x, value_y)

    @property
    def price_q128(self) -> int:
        """The active bin's price, y base units per x base unit, as a Q128 fixed-point integer."""
        return self._price

    def fee_pips(self, bins_crossed: int) -> int:
        """Fee rate for the part of a swap filled after crossing `bins_crossed` bins.

        Meteora: variable fee = control * (volatility_accumulator * bin_step)^2; here the
        accumulator counts bins, and /100 scales it so that crossing 10 bins of 10 bps adds
        1 bps and 100 bins adds 1% (control 1).
        """
        accumulator = min(self.volatility + bins_crossed, MAX_VOLATILITY)
        variable = self.variable_fee_control * (accumulator * self.bin_step_bps) ** 2 // 100
        return min(self.base_fee_pips + variable, MAX_FEE_PIPS)

    def quote(self, mint_in: str, amount_in: int) -> PoolSwap:
        _check_amount(amount_in)
        return _BinWalk(self, _sells_x(self, mint_in)).run(amount_in)

    def repriced(self, price: Decimal) -> MeteoraPool:
        # LPs follow the market: the liquidity range moves with the active bin, keeping its width.
        active_id = _nearest_bin(price, self.token_x, self.token_y, self.bin_step_bps)
        shift = active_id - self.active_id
        active_x, active_y = _half_and_half(
            self.bin_liquidity, _bin_price(self.bin_step_bps, active_id)
        )
        return replace(self, active_id=active_id, active_x=active_x, active_y=active_y,
                       lower_id=self.lower_id + shift, upper_id=self.upper_id + shift)

    def decayed(self) -> MeteoraPool:
        # DLMM keeps a fraction (the reduction factor, ~0.5) of the accumulator after a filter
        # period without swaps; one call here is one such period.
        return replace(self, volatility=self.volatility // 2)


class _BinWalk:
    """One DLMM swap: drains the out-token bin by bin, charging each bin's fee rate."""

    __slots__ = ("pool", "sell_x", "bin_id", "price", "reserve_in", "reserve_out", "crossed")

    def __init__(self, pool: MeteoraPool, sell_x: bool) -> None:
        self.pool, self.sell_x = pool, sell_x
        self.bin_id, self.price, self.crossed = pool.active_id, pool.price_q128, 0
        self.reserve_in = pool.active_x if sell_x else pool.active_y
        self.reserve_out = pool.active_y if sell_x else pool.active_x

    def run(self, amount_in: int) -> PoolSwap:
        remaining, amount_out, fee = amount_in, 0, 0
        start_price = self.price
        while True:
            rate = self.pool.fee_pips(self.crossed)
            drain_net = self._input_for(self.reserve_out)
            drain_gross = _ceil_div(drain_net * FEE_PIPS, FEE_PIPS - rate)
            if remaining <= drain_gross:  # the swap ends inside this bin
                bin_fee = _ceil_div(remaining * rate, FEE_PIPS)
                net = remaining - bin_fee
                got = min(self._output_for(net), self.reserve_out)
                self.reserve_in += net
                self.reserve_out -= got
                amount_out, fee = amount_out + got, fee + bin_fee
                break
            amount_out += self.reserve_out
            fee += drain_gross - drain_net
            remaining -= drain_gross
            self._next_bin()
        net_total = amount_in - fee
        if self.sell_x:
            impact = _impact_bps(net_total * start_price, _ONE, amount_out)
        else:
            impact = _impact_bps(net_total * _ONE, start_price, amount_out)
        return PoolSwap(amount_in, amount_out, fee, impact, self._pool_after())

    def _input_for(self, out: int) -> int:
        """Net input that buys `out` at this bin's price (rounded up: the pool never loses)."""
        if self.sell_x:
            return _ceil_div(out << _FRAC, self.price)
        return _ceil_div(out * self.price, _ONE)

    def _output_for(self, net_in: int) -> int:
        if self.sell_x:
            return (net_in * self.price) >> _FRAC
        return (net_in << _FRAC) // self.price

    def _next_bin(self) -> None:
        """Move one bin away from the token being sold (down when selling x, up when buying it)."""
        pool = self.pool
        self.bin_id += -1 if self.sell_x else 1
        if not pool.lower_id <= self.bin_id <= pool.upper_id:
            raise InsufficientLiquidity(f"{pool.key} has no liquidity past bin {self.bin_id}")
        # One multiplication per bin instead of a fresh power: the difference is ~1e-38.
        step = _ONE + (pool.bin_step_bps << _FRAC) // 10_000
        self.price = (self.price << _FRAC) // step if self.sell_x else (self.price * step) >> _FRAC
        self.crossed += 1
        self.reserve_in = 0
        # A full bin is worth `bin_liquidity` of y: as y below the price, as x above it.
        self.reserve_out = (
            pool.bin_liquidity if self.sell_x else (pool.bin_liquidity << _FRAC) // self.price
        )

    def _pool_after(self) -> MeteoraPool:
        if self.sell_x:
            x, y = self.reserve_in, self.reserve_out
        else:
            x, y = self.reserve_out, self.reserve_in
        pool = self.pool
        volatility = min(pool.volatility + self.crossed, MAX_VOLATILITY)
        # The constructor, not dataclasses.replace: this is the hot path of routing.
        return MeteoraPool(pool.token_x, pool.token_y, pool.bin_step_bps, self.bin_id, x, y,
                           pool.bin_liquidity, pool.lower_id, pool.upper_id, pool.base_fee_pips,
                           pool.variable_fee_control, volatility)


def _bin_price(bin_step_bps: int, bin_id: int) -> int:
    """(1 + bin_step)^bin_id as Q128, by square-and-multiply on integers (as Meteora does)."""
    base = _ONE + (bin_step_bps << _FRAC) // 10_000
    result, exponent = _ONE, abs(bin_id)
    while exponent:
        if exponent & 1:
            result = (result * base) >> _FRAC
        base = (base * base) >> _FRAC
        exponent >>= 1
    return result if bin_id >= 0 else (_ONE << _FRAC) // result


def _nearest_bin(price: Decimal, token_x: Token, token_y: Token, bin_step_bps: int) -> int:
    """The bin id whose price is nearest `price` (human y per x) in log terms."""
    numerator, denominator = _raw_price(price, token_x, token_y)
    context = Context(prec=40)  # local: the thread's context is neither read nor changed
    log_price = context.ln(Decimal(numerator)) - context.ln(Decimal(denominator))
    log_step = context.ln(context.divide(Decimal(10_000 + bin_step_bps), Decimal(10_000)))
    return int(context.divide(log_price, log_step).to_integral_value(context=context))


def _half_and_half(bin_liquidity: int, price: int) -> tuple[int, int]:
    """An active bin holding half its value in x and half in y."""
    active_y = bin_liquidity // 2
    return ((bin_liquidity - active_y) << _FRAC) // price, active_y


def _raw_price(price: Decimal, token_x: Token, token_y: Token) -> tuple[int, int]:
    """A human price (y per x) as an exact fraction of base units of y per base unit of x."""
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price must be a positive finite decimal, got {price}")
    numerator, denominator = price.as_integer_ratio()
    return numerator * 10**token_y.decimals, denominator * 10**token_x.decimals


def _impact_bps(ideal_numerator: int, ideal_denominator: int, amount_out: int) -> Decimal:
    """How far `amount_out` falls short of the ideal output, in bps, floored to 0.01 bps."""
    if ideal_numerator <= 0:
        return Decimal(10_000)  # everything went to fees: nothing comes out
    shortfall = ideal_numerator - amount_out * ideal_denominator
    return Decimal(max(0, shortfall) * 1_000_000 // ideal_numerator).scaleb(-2)


def _sells_x(pool: Pool, mint_in: str) -> bool:
    if mint_in == pool.token_x.mint:
        return True
    if mint_in == pool.token_y.mint:
        return False
    raise ValueError(f"{mint_in} is not traded by {pool.key}")


def _check_pair(token_x: Token, token_y: Token) -> None:
    if token_x.mint == token_y.mint:
        raise ValueError("a pool needs two different tokens")


def _check_amount(amount_in: int) -> None:
    # bool is an int subclass and a float would lose lamports: refuse both outright.
    if type(amount_in) is not int or amount_in <= 0:
        raise ValueError(f"amount_in must be a positive integer of base units, got {amount_in!r}")


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
