"""Order amount arithmetic: slippage floors and executed prices (exact, never float)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

BPS: Final = 10_000
# Explicit, so a price does not depend on the caller's thread-local decimal context.
_PRICE_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)


def min_amount_out(amount_out: int, slippage_bps: int) -> int:
    """The least the swap may yield: the quote minus the slippage tolerance, rounded down."""
    return amount_out * (BPS - slippage_bps) // BPS


def executed_price(
    amount_in: int, amount_out: int, *, decimals_in: int, decimals_out: int
) -> Decimal:
    """TokenOut received per 1 tokenIn, in human units, to 28 significant digits."""
    received = _PRICE_CONTEXT.scaleb(Decimal(amount_out), -decimals_out)
    paid = _PRICE_CONTEXT.scaleb(Decimal(amount_in), -decimals_in)
    return _PRICE_CONTEXT.divide(received, paid)
