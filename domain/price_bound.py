"""The best price any order size can get: an upper bound of the net executable price.

Consumes a `Market` and a direction (token in, token out, as mints); produces the highest
price, tokenOut per 1 tokenIn in human units, that ANY amount could fetch after fees and
impact. It is what lets the trigger stage skip waiting limit orders a tick cannot fill.

Why it bounds every size: no venue pays more than its spot price for the net input (a
constant-product pool pays `out = R_out*net / (R_in + net) <= net * R_out/R_in`; a DLMM pool
fills the active bin at its price and every later bin at a worse one), and every venue
declares the least fee rate its pools charge (`Pool.fee_bounds`). So a hop pays at most
`spot * (1 - lowest fee)` per unit whatever the size, a path at most the product of its hops,
and a split (a mix of paths) at most the best path. Spot prices are 18-digit
truncations, so the bound is widened by a relative 1e-12: it may admit a few orders that the
exact price then rejects, never miss one that would fill.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Final

from domain.market import Market
from domain.pools import Pool
from domain.routing import candidate_paths

_CONTEXT: Final = Context(prec=40)
_WIDENING: Final = Decimal("1.000000000001")


def price_bound(market: Market, token_in: str, token_out: str) -> Decimal | None:
    """The upper bound of the net price of any amount in -> out; None if no path exists."""
    best: Decimal | None = None
    for path in candidate_paths(market, token_in, token_out):
        bound = Decimal(1)
        for mint_in, mint_out in zip(path.mints, path.mints[1:]):
            pool = market.pool(path.venue, mint_in, mint_out)
            assert pool is not None, "candidate paths only use existing pools"
            bound = _CONTEXT.multiply(bound, hop_bound(pool, mint_in))
        if best is None or bound > best:
            best = bound
    return None if best is None else _CONTEXT.multiply(best, _WIDENING)


def hop_bound(pool: Pool, mint_in: str) -> Decimal:
    """The most one unit of `mint_in` can fetch from `pool`: spot price less the least fee."""
    return _CONTEXT.multiply(pool.spot_price(mint_in), 1 - minimal_fee(pool))


def minimal_fee(pool: Pool) -> Decimal:
    """The least fee rate the pool charges on any swap: the lower of its venue's fee bounds
    (every pool must declare them; see `domain.pools.Pool.fee_bounds`)."""
    lowest = pool.fee_bounds().lowest
    return _CONTEXT.divide(Decimal(lowest.numerator), Decimal(lowest.denominator))
