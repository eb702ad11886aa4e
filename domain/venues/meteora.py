"""Meteora: a DLMM-like pool of discrete price bins with a dynamic fee.

Consumes integer base units and produces `PoolSwap`s; also maps a pool to and from its wire
state (`BinState`, a branch of schemas/market_event.avsc) and lists Meteora's pools in the
default market.

Liquidity sits in discrete bins whose prices are (1 + bin_step)^id; inside one bin the price
is constant (constant sum), so a swap drains bins one by one, moving the price a bin step each
time. The fee is a base fee plus a variable fee that grows with the square of the volatility
accumulator: the volatility carried from earlier swaps plus one per bin this swap has
crossed, as Meteora computes it bin by bin. Simplification: every bin holds the same value (a
"spot" distribution), the accumulator decays only when `decayed()` is called (time is not a
pool's business), and fees go to LPs outside the bins, as in DLMM. Prices inside a pool are
128-bit fixed point integers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from typing import Final

from domain.pools import (
    FeeBounds,
    InsufficientLiquidity,
    PoolKey,
    PoolSwap,
    ceil_div,
    check_amount,
    check_pair,
    impact_bps,
    raw_price,
    sells_x,
)
from domain.tokens import BONK, JUP, MSOL, SOL, USDC, USDT, Token, decimal_ratio

NAME: Final = "meteora"
FEE_PIPS: Final = 1_000_000  # DLMM fee rates are in millionths: 1 bps = 100 pips
MAX_FEE_PIPS: Final = 100_000  # Meteora caps base + variable fee at 10%
MAX_VOLATILITY: Final = 10_000  # bins; the fee cap binds long before: it bounds the integer
_FRAC: Final = 128  # fractional bits of DLMM bin prices (Meteora itself uses Q64.64)
_ONE: Final = 1 << _FRAC
# The default market's Meteora pools: concentrated bins with lower fees than Raydium's.
# (x, y, bin step bps, USD per bin, bins each side, base fee bps, offset from reference bps)
_SEEDS: Final = (
    (SOL, USDC, 10, 2_000, 400, 20, 3),
    (SOL, USDT, 10, 1_000, 300, 20, 0),
    (USDC, USDT, 1, 150_000, 50, 1, 0),
    (BONK, USDC, 25, 2_000, 200, 25, 0),
    (JUP, USDC, 20, 3_000, 200, 20, 0),
    (MSOL, SOL, 1, 100_000, 100, 1, 0),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BinState:
    """A Meteora DLMM pool on the wire, field for field as `MeteoraPool` holds it (see there)."""

    bin_step_bps: int
    active_id: int
    active_x: int
    active_y: int
    bin_liquidity: int
    lower_id: int
    upper_id: int
    base_fee_pips: int
    variable_fee_control: int
    volatility: int


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
    # The full bins beyond the active one, per direction (True: selling x), as far as a quote
    # has needed them: every quote of this pool state reuses them (_Ladder).
    _ladders: dict[bool, _Ladder] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_pair(self.token_x, self.token_y)
        if not 1 <= self.bin_step_bps <= 500:
            raise ValueError("bin step must be within 1..500 bps")
        if not self.lower_id <= self.active_id <= self.upper_id:
            raise ValueError("the active bin must lie within the liquidity range")
        if min(self.active_x, self.active_y, self.volatility) < 0 or self.bin_liquidity <= 0:
            raise ValueError("reserves, liquidity and volatility must not be negative")
        if not 0 <= self.base_fee_pips <= MAX_FEE_PIPS or self.variable_fee_control < 0:
            raise ValueError("fees must be within 0..10%")
        object.__setattr__(self, "_price", _bin_price(self.bin_step_bps, self.active_id))
        object.__setattr__(self, "_ladders", {})

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
        return NAME

    @property
    def key(self) -> PoolKey:
        return PoolKey.of(self.venue, self.token_x.mint, self.token_y.mint)

    def spot_price(self, mint_in: str) -> Decimal:
        value_x = _ONE * 10**self.token_y.decimals
        value_y = self.price_q128 * 10**self.token_x.decimals
        if sells_x(self, mint_in):
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
        check_amount(amount_in)
        return _swap(self, sells_x(self, mint_in), amount_in)

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

    def fee_bounds(self) -> FeeBounds:
        # Every bin of a swap charges fee_pips(crossed) for some crossed >= 0, which never
        # falls below the base fee nor rises above the rate at the accumulator's bound.
        return FeeBounds(lowest=Fraction(self.base_fee_pips, FEE_PIPS),
                         highest=Fraction(self.fee_pips(MAX_VOLATILITY), FEE_PIPS))

    def scaled(self, bps: int) -> MeteoraPool:
        # Every bin by the same factor, the active one included: the active bin stays.
        def scale(amount: int) -> int:
            return max(1, amount * (10_000 + bps) // 10_000) if amount else 0

        return replace(self, bin_liquidity=scale(self.bin_liquidity),
                       active_x=scale(self.active_x), active_y=scale(self.active_y))

    def value_in_y(self) -> int:
        full_bins = self.upper_id - self.lower_id  # every bin but the active one
        return (full_bins * self.bin_liquidity + self.active_y
                + ((self.active_x * self.price_q128) >> _FRAC))

    def wire_state(self) -> BinState:
        return BinState(
            bin_step_bps=self.bin_step_bps, active_id=self.active_id, active_x=self.active_x,
            active_y=self.active_y, bin_liquidity=self.bin_liquidity, lower_id=self.lower_id,
            upper_id=self.upper_id, base_fee_pips=self.base_fee_pips,
            variable_fee_control=self.variable_fee_control, volatility=self.volatility,
        )


class _Ladder:
    """The full bins on one side of a pool's active bin, in walking order, with running
    totals: what draining bins 1..k takes in (fee included) and gives out, and its fee.

    A full bin's figures depend only on the pool and how many bins the walk crossed to reach
    it (its price, its fee rate), never on the amount: a pool state computes each bin once,
    however many amounts routing and the waiting book quote on it, and a walk finds the bin
    it ends in by bisection. Bins are added only as far as a quote reaches.
    """

    __slots__ = ("pool", "sell_x", "step", "available", "prices", "gross", "out", "fees")

    def __init__(self, pool: MeteoraPool, sell_x: bool) -> None:
        self.pool, self.sell_x = pool, sell_x
        # One multiplication per bin instead of a fresh power: the difference is ~1e-38.
        self.step = _ONE + (pool.bin_step_bps << _FRAC) // 10_000
        self.available = (pool.active_id - pool.lower_id if sell_x
                          else pool.upper_id - pool.active_id)
        self.prices = [pool.price_q128]  # [k]: bin k's price (0: the active bin)
        self.gross, self.out, self.fees = [0], [0], [0]  # [k]: totals over bins 1..k

    def reach(self, remaining: int) -> int:
        """The bin (1, 2, ...) in which `remaining` input, left after the active bin, runs
        out: the first k whose running gross input covers it."""
        gross = self.gross
        if gross[-1] < remaining:
            self._extend(remaining)
        return bisect_left(gross, remaining)

    def _extend(self, remaining: int) -> None:
        pool, sell_x, step = self.pool, self.sell_x, self.step
        prices, gross, out, fees = self.prices, self.gross, self.out, self.fees
        price, crossed = prices[-1], len(prices) - 1
        total_gross, total_out, total_fee = gross[-1], out[-1], fees[-1]
        liquidity = pool.bin_liquidity
        while total_gross < remaining:
            crossed += 1
            if crossed > self.available:
                past = pool.active_id + (-crossed if sell_x else crossed)
                raise InsufficientLiquidity(f"{pool.key} has no liquidity past bin {past}")
            price = (price << _FRAC) // step if sell_x else (price * step) >> _FRAC
            # A full bin is worth `bin_liquidity` of y: as y below the price, as x above it.
            reserve = liquidity if sell_x else (liquidity << _FRAC) // price
            net = _input_for(sell_x, price, reserve)
            bin_gross = ceil_div(net * FEE_PIPS, FEE_PIPS - pool.fee_pips(crossed))
            total_gross, total_out = total_gross + bin_gross, total_out + reserve
            total_fee += bin_gross - net
            prices.append(price)
            gross.append(total_gross)
            out.append(total_out)
            fees.append(total_fee)


def _input_for(sell_x: bool, price: int, out: int) -> int:
    """Net input that buys `out` at `price` (rounded up: the pool never loses)."""
    return ceil_div(out << _FRAC, price) if sell_x else ceil_div(out * price, _ONE)


def _output_for(sell_x: bool, price: int, net_in: int) -> int:
    return (net_in * price) >> _FRAC if sell_x else (net_in << _FRAC) // price


def _swap(pool: MeteoraPool, sell_x: bool, amount_in: int) -> PoolSwap:
    """One DLMM swap: drains the out-token bin by bin, charging each bin's fee rate.

    Per bin: the fee rate after `crossed` bins (`MeteoraPool.fee_pips`), the net input that
    drains the bin at its price, that input grossed up by the fee (rounded up); if what
    remains is no more, the swap ends inside the bin, else the walk moves one bin away from
    the token being sold. The active bin is walked here; the full bins beyond it come from
    the pool's `_Ladder`. tests/unit/test_meteora_walk.py holds the result to a plain
    bin-by-bin reading of the rules.
    """
    price = pool.price_q128
    reserve_in = pool.active_x if sell_x else pool.active_y
    reserve_out = pool.active_y if sell_x else pool.active_x
    net = _input_for(sell_x, price, reserve_out)
    gross = ceil_div(net * FEE_PIPS, FEE_PIPS - pool.fee_pips(0))
    crossed, amount_out, fee, amount_in_bin = 0, 0, 0, amount_in
    if amount_in > gross:  # the active bin is drained: on to the full bins beyond it
        ladder = pool._ladders.get(sell_x)
        if ladder is None:
            ladder = pool._ladders[sell_x] = _Ladder(pool, sell_x)
        remaining = amount_in - gross
        crossed = ladder.reach(remaining)
        amount_out = reserve_out + ladder.out[crossed - 1]
        fee = gross - net + ladder.fees[crossed - 1]
        amount_in_bin = remaining - ladder.gross[crossed - 1]
        price = ladder.prices[crossed]
        reserve_in, reserve_out = 0, ladder.out[crossed] - ladder.out[crossed - 1]
    # The swap ends inside this bin.
    bin_fee = ceil_div(amount_in_bin * pool.fee_pips(crossed), FEE_PIPS)
    net_in_bin = amount_in_bin - bin_fee
    got = min(_output_for(sell_x, price, net_in_bin), reserve_out)
    reserve_in += net_in_bin
    reserve_out -= got
    amount_out, fee = amount_out + got, fee + bin_fee
    net_total = amount_in - fee
    start_price = pool.price_q128
    if sell_x:
        impact = impact_bps(net_total * start_price, _ONE, amount_out)
        x, y = reserve_in, reserve_out
    else:
        impact = impact_bps(net_total * _ONE, start_price, amount_out)
        x, y = reserve_out, reserve_in
    bin_id = pool.active_id + (-crossed if sell_x else crossed)
    # The constructor, not dataclasses.replace: this is the hot path of routing.
    after = MeteoraPool(pool.token_x, pool.token_y, pool.bin_step_bps, bin_id, x, y,
                        pool.bin_liquidity, pool.lower_id, pool.upper_id, pool.base_fee_pips,
                        pool.variable_fee_control,
                        min(pool.volatility + crossed, MAX_VOLATILITY))
    return PoolSwap(amount_in, amount_out, fee, impact, after)


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
    numerator, denominator = raw_price(price, token_x, token_y)
    context = Context(prec=40)  # local: the thread's context is neither read nor changed
    log_price = context.ln(Decimal(numerator)) - context.ln(Decimal(denominator))
    log_step = context.ln(context.divide(Decimal(10_000 + bin_step_bps), Decimal(10_000)))
    return int(context.divide(log_price, log_step).to_integral_value(context=context))


def _half_and_half(bin_liquidity: int, price: int) -> tuple[int, int]:
    """An active bin holding half its value in x and half in y."""
    active_y = bin_liquidity // 2
    return ((bin_liquidity - active_y) << _FRAC) // price, active_y


class Meteora:
    """The Meteora venue: DLMM pools carried as `BinState`."""

    name: Final = NAME
    pool_type: Final = MeteoraPool
    state_type: Final = BinState

    def pool_from(self, token_x: Token, token_y: Token, state: object) -> MeteoraPool:
        if not isinstance(state, BinState):
            raise ValueError(f"{NAME} does not run {type(state).__name__} pools")
        return MeteoraPool(token_x, token_y, state.bin_step_bps, state.active_id,
                           state.active_x, state.active_y, state.bin_liquidity, state.lower_id,
                           state.upper_id, state.base_fee_pips, state.variable_fee_control,
                           state.volatility)

    def seed_pools(self, reference_usd: Mapping[str, Decimal]) -> tuple[MeteoraPool, ...]:
        usd = reference_usd
        with localcontext(Context(prec=34)):  # the caller's context is restored on exit
            return tuple(
                MeteoraPool.around(
                    x, y, usd[x.mint] / usd[y.mint] * (10_000 + offset_bps) / 10_000,
                    bin_step_bps=step,
                    bin_liquidity=int(Decimal(bin_usd) / usd[y.mint] * 10**y.decimals),
                    bins_each_side=bins,
                    base_fee_pips=fee_bps * 100,
                )
                for x, y, step, bin_usd, bins, fee_bps, offset_bps in _SEEDS
            )


METEORA: Final = Meteora()
