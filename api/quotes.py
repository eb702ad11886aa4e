"""The quote resource: what routing would pick right now, without placing an order.

Consumes `GET /api/quote?tokenIn=&tokenOut=&amountIn=` and the market snapshot of this
process (`Edge.market`); produces the routing decision as JSON: every venue's quote, the
winner (a venue, or "split"), the legs, the reason, and the price. Every amount is given
twice, as an exact human decimal string and as integer base units in a string (base units
exceed 2**53, which JSON numbers cannot carry exactly in most clients). The parameters are
checked like an order's fields, with the same messages; a parameter the route does not
declare is a 400 naming it (`api.query_params`, the policy of every route).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EdgeDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, FieldError, InvalidRequest
from api.fields import Collector, amount_units, check_distinct, resolve_token
from api.shapes import Amount, PublicModel, TokenInfo
from domain.market import Market
from domain.quotes import RouteLeg, RoutingDecision, VenueQuote
from domain.routing import NoRoute, best_route
from domain.tokens import Token, TokenRegistry, UnknownToken, unit_price

router = APIRouter(prefix="/api", tags=["quotes"])


# --- public shapes ----------------------------------------------------------------------------


class QuoteInfo(PublicModel):
    venue: str
    amount_in: Amount
    amount_out: Amount
    fee: Amount  # in tokenIn
    price_impact_bps: str
    path: list[TokenInfo]
    selected: bool  # one of the paths the winning route uses


class LegInfo(PublicModel):
    venue: str
    amount_in: Amount
    amount_out: Amount
    path: list[TokenInfo]


class QuoteResponse(PublicModel):
    token_in: TokenInfo
    token_out: TokenInfo
    amount_in: Amount
    amount_out: Amount
    price: str  # tokenOut per 1 tokenIn, after fees and impact
    venue: str  # the winner, or "split"
    reason: str
    quotes: list[QuoteInfo]
    legs: list[LegInfo]


# --- the route --------------------------------------------------------------------------------


@router.get(
    "/quote",
    response_model=QuoteResponse,
    summary="What routing would pick now",
    responses={404: {"model": ErrorBody, "description": "No route for this pair or amount."},
               **ERROR_RESPONSES},
)
async def quote(
    edge: EdgeDep,
    token_in: Annotated[str, Query(alias="tokenIn", description="Symbol or mint.")],
    token_out: Annotated[str, Query(alias="tokenOut", description="Symbol or mint.")],
    amount_in: Annotated[str, Query(alias="amountIn", description='Human units, e.g. "1.5".')],
) -> QuoteResponse:
    source, target, units = _parse(edge.registry, token_in, token_out, amount_in)
    market = edge.market.current()
    try:
        # In a worker thread: a large order's split search takes tens of ms of pure CPU,
        # which would otherwise stall every POST this process is serving meanwhile.
        decision = await asyncio.to_thread(best_route, market, source.mint, target.mint, units)
    except NoRoute as exc:
        message = f"no route from {source.symbol} to {target.symbol} for {amount_in}: {exc}"
        raise ApiError(404, "no_route", message, (FieldError("tokenOut", str(exc)),)) from None
    return _response(decision, _Tokens(edge.registry, market), source, target)


def _parse(
    registry: TokenRegistry, token_in: str, token_out: str, amount_in: str
) -> tuple[Token, Token, int]:
    """The same checks, and the same messages, as an order's fields (see `api.requests`)."""
    found = Collector()
    source = found.check(lambda: resolve_token("tokenIn", token_in, registry))
    target = found.check(lambda: resolve_token("tokenOut", token_out, registry))
    if source is not None and target is not None:
        found.check(lambda: check_distinct(source, target))
    units = found.check(lambda: amount_units("amountIn", amount_in, source)) if source else None
    if found.errors:
        raise InvalidRequest(found.errors)
    assert source is not None and target is not None and units is not None
    return source, target, units


class _Tokens:
    """Mint -> token for paths: the registry first, then the market (a token only it lists)."""

    def __init__(self, registry: TokenRegistry, market: Market) -> None:
        self._registry = registry
        self._market = market

    def __call__(self, mint: str) -> Token:
        try:
            return self._registry.by_mint(mint)
        except UnknownToken:
            return self._market.token(mint)


def _response(
    decision: RoutingDecision, tokens: _Tokens, source: Token, target: Token
) -> QuoteResponse:
    chosen = {(leg.venue, leg.path) for leg in decision.legs}
    return QuoteResponse(
        token_in=TokenInfo.of(source),
        token_out=TokenInfo.of(target),
        amount_in=Amount.of(decision.amount_in, source),
        amount_out=Amount.of(decision.amount_out, target),
        price=str(unit_price(decision.amount_in, source, decision.amount_out, target)),
        venue=decision.venue,
        reason=decision.reason,
        quotes=[_quote(q, tokens, (q.venue, q.path) in chosen) for q in decision.quotes],
        legs=[_leg(leg, tokens) for leg in decision.legs],
    )


def _quote(quote: VenueQuote, tokens: _Tokens, selected: bool) -> QuoteInfo:
    source, target = tokens(quote.path[0]), tokens(quote.path[-1])
    return QuoteInfo(
        venue=quote.venue,
        amount_in=Amount.of(quote.amount_in, source),
        amount_out=Amount.of(quote.amount_out, target),
        fee=Amount.of(quote.fee, source),
        price_impact_bps=str(quote.price_impact_bps),
        path=[TokenInfo.of(tokens(mint)) for mint in quote.path],
        selected=selected,
    )


def _leg(leg: RouteLeg, tokens: _Tokens) -> LegInfo:
    source, target = tokens(leg.path[0]), tokens(leg.path[-1])
    return LegInfo(
        venue=leg.venue,
        amount_in=Amount.of(leg.amount_in, source),
        amount_out=Amount.of(leg.amount_out, target),
        path=[TokenInfo.of(tokens(mint)) for mint in leg.path],
    )



