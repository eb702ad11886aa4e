"""When a conditional order fires: the predicates the trigger stage and the decider share.

Pure. Prices are tokenOut received per 1 tokenIn, human units, as `tokens.unit_price` makes
them: truncated to 18 significant digits. The edge refuses limit prices with more digits, and
for such a limit "the truncated price >= limit" holds exactly when "the real price >= limit"
(truncation never crosses a value of the same or a coarser digit grid), so the stage that
computes a price and the decider that re-checks the reported one can never disagree.

A sniper's `max_price` is the other way round, what one token of the listing may cost:
tokenIn paid per 1 tokenOut. It holds when `1 / price <= max_price`, tested without a
division as `price * max_price >= 1`.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Final

from domain.orders.commands import PoolTriggerFired
from domain.orders.rules import MAX_PRICE_DIGITS
from domain.orders.status import Trigger
from domain.orders.terms import SniperTerms

__all__ = ["MAX_PRICE_DIGITS", "limit_reached", "liquidity_crossed", "liquidity_reached",
           "sniper_fires", "within_max_price"]
# Wide enough that the product of two prices of the wire (at most ~40 digits) is exact.
_EXACT: Final = Context(prec=100)


def limit_reached(limit_price: Decimal, price: Decimal) -> bool:
    """Does `price` (the order's own size, after fees and impact) reach the limit?"""
    return price >= limit_price


def within_max_price(max_price: Decimal | None, price: Decimal) -> bool:
    """Does one tokenOut cost at most `max_price` tokenIn at `price`? (no guard: yes)"""
    if max_price is None:
        return True
    return price > 0 and _EXACT.multiply(price, max_price) >= 1


def liquidity_reached(min_liquidity_usd: Decimal | None, liquidity_usd: Decimal) -> bool:
    return min_liquidity_usd is None or liquidity_usd >= min_liquidity_usd


def liquidity_crossed(
    min_liquidity_usd: Decimal | None, liquidity_usd: Decimal, previous_usd: Decimal | None
) -> bool:
    """Did a pool's liquidity cross the threshold upwards (from below, or from nothing)?"""
    if not liquidity_reached(min_liquidity_usd, liquidity_usd):
        return False
    return previous_usd is None or not liquidity_reached(min_liquidity_usd, previous_usd)


def sniper_fires(terms: SniperTerms, report: PoolTriggerFired) -> bool:
    """Does a reported pool event meet the sniper's trigger, threshold and price guard?"""
    return (
        terms.trigger is report.trigger
        and terms.trigger in (Trigger.POOL_CREATED, Trigger.LIQUIDITY)
        and liquidity_reached(terms.min_liquidity_usd, report.liquidity_usd)
        and within_max_price(terms.max_price, report.observed_price)
    )
