"""The market board: every pair's spot price on every venue, as this process sees it now.

Consumes `GET /api/market/prices` and the market snapshot of this process (`Edge.market`, kept
current from the market topics); produces, per pair with a pool on some venue, each venue's
spot price of the pair's base token in its quote token (human units, exact decimal strings)
and its lowest fee, so a person (the dashboard's market panel) can see why a venue wins. The
base is the first venue's pool's x token; every venue's price is given in that orientation.
No SQL: the snapshot is in memory, so polling it costs the read model nothing.
"""

from __future__ import annotations

from decimal import Context, Decimal

from fastapi import APIRouter

from api.deps import EdgeDep
from api.shapes import PublicModel, TokenInfo
from domain.market import Market
from domain.pools import Pool

router = APIRouter(prefix="/api/market", tags=["quotes"])
_SHOWN = Context(prec=12)  # a board, not a ledger: 12 significant digits


class VenuePrice(PublicModel):
    venue: str
    price: str  # quote per 1 base, spot (before fee and impact)
    fee_bps: str  # the lowest fee the pool charges


class PairPrices(PublicModel):
    base: TokenInfo
    quote: TokenInfo
    venues: list[VenuePrice]


class MarketBoard(PublicModel):
    pairs: list[PairPrices]


@router.get("/prices", response_model=MarketBoard, summary="Spot price per pair and venue")
async def market_prices(edge: EdgeDep) -> MarketBoard:
    return board(edge.market.current())


def board(market: Market) -> MarketBoard:
    by_pair: dict[frozenset[str], list[Pool]] = {}
    for pool in market.pools:
        by_pair.setdefault(frozenset((pool.token_x.mint, pool.token_y.mint)), []).append(pool)
    pairs = [_pair(pools) for pools in by_pair.values()]
    return MarketBoard(pairs=sorted(pairs, key=lambda p: (p.base.symbol, p.quote.symbol)))


def _pair(pools: list[Pool]) -> PairPrices:
    base, quote = pools[0].token_x, pools[0].token_y
    return PairPrices(base=TokenInfo.of(base), quote=TokenInfo.of(quote), venues=[
        VenuePrice(venue=pool.venue, price=format(_SHOWN.plus(pool.spot_price(base.mint)), "f"),
                   fee_bps=format(_bps(pool), "f"))
        for pool in sorted(pools, key=lambda pool: pool.venue)])


def _bps(pool: Pool) -> Decimal:
    rate = pool.fee_bounds().lowest
    return (Decimal(rate.numerator) * 10_000 / rate.denominator).normalize()
