"""What clients may send to the order endpoints, and how it becomes an internal request.

Consumes a raw request body (bytes) and the token registry; produces an `OrderRequest`
(tokens resolved, amount in integer base units, slippage in whole bps) or raises an
`ApiError` naming every offending field. The shapes are kept apart:
- `OrderRequestBody`: the JSON as sent, canonical names plus the aliases older clients use
  (`amount`; `slippage` as a fraction; `slippageTolerance` as a percent; `targetPrice` for
  `limitPrice`); it also documents the body in OpenAPI;
- `OrderRequest`: the validated, internal form the router turns into an `ExecuteOrder`;
- the response shapes, which live with their routers.

Money is read exactly: numbers are kept as their source text (`api.exact_json`), so `1.1` SOL
is 1100000000 lamports, not whatever the nearest float is, and `"5_000"`, `" 5 "`, `"-0"`,
`"1e400"` or `NaN` are rejected instead of "helpfully" parsed. Unknown fields are rejected.

Limit and sniper orders add conditional terms (see `api.conditions`). A sniper may want a
token that no pool lists yet, so its `tokenOut` may be a mint the registry does not know, given
with `tokenOutDecimals` (read from the mint account, as a wallet does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.bodies import read_object, validated
from api.conditions import ConditionFields, parse_conditions
from api.errors import FieldError, InvalidRequest, invalid
from api.exact_json import JsonNumber
from api.schedule_fields import ScheduleFields, interval_below_minimum, parse_schedule
from schemas.records import camel
from api.fields import (
    SLIPPAGE_BPS,
    SLIPPAGE_FRACTION,
    SLIPPAGE_PERCENT,
    Collector,
    amount_units,
    check_idempotency_key,
    resolve_token,
    shown,
)
from domain.orders.rules import (
    MAX_SLIPPAGE_BPS,
    MAX_TOKEN_DECIMALS,
    MIN_SLIPPAGE_BPS,
    decimals_problem,
    order_errors,
)
from domain.orders.status import OrderType
from domain.orders.terms import TERMS_OF_TYPE, OrderTerms
from domain.tokens import Token, TokenRegistry

DEFAULT_SLIPPAGE_BPS: Final = 50
TARGET_PRICE: Final = "targetPrice"  # older clients' name of limitPrice
# A base58 mint address: what a token not yet in the registry must be spelled as.
_MINT = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}", re.ASCII)


# --- the body as sent -------------------------------------------------------------------------


def _number_text(value: object) -> object:
    """A JSON number arrives as its source text; a string is kept; anything else is an error."""
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, str):
        return value
    raise PydanticCustomError("number_type", "must be a decimal string or a JSON number")


_NUMBER_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [{"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}, {"type": "number"}]
}
NumberText = Annotated[str, BeforeValidator(_number_text), WithJsonSchema(_NUMBER_SCHEMA)]

CANONICAL_EXAMPLE: Final[dict[str, JsonValue]] = {
    "orderType": "market",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amountIn": "1.5",
    "slippageBps": 50,
    "clientOrderId": "bot-7-000123",
}
# Older clients send JSON numbers; these literals only show that in the docs (a received
# number is read from its text, never through a float).
FRACTION_EXAMPLE: Final[dict[str, JsonValue]] = {
    "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1.5, "slippage": 0.01
}
PERCENT_EXAMPLE: Final[dict[str, JsonValue]] = {
    "tokenIn": "USDC", "tokenOut": "SOL", "amount": "250", "slippageTolerance": 0.5
}
LIMIT_EXAMPLE: Final[dict[str, JsonValue]] = {
    "orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2",
    "limitPrice": "190", "slippageBps": 50, "timeInForce": "GTD",
    "expiresAt": "2030-01-01T00:00:00Z",
}
SNIPER_EXAMPLE: Final[dict[str, JsonValue]] = {
    "orderType": "sniper", "tokenIn": "USDC", "tokenOut": "BONK", "amountIn": "100",
    "trigger": "liquidity", "minLiquidityUsd": "50000", "maxPrice": "0.00003",
    "slippageBps": 300,
}
TWAP_EXAMPLE: Final[dict[str, JsonValue]] = {
    "orderType": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "10",
    "slices": 5, "intervalS": 60, "minSlicePrice": "150", "slippageBps": 50,
}
DCA_EXAMPLE: Final[dict[str, JsonValue]] = {
    "orderType": "dca", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "1000",
    "amountPerSlice": "100", "intervalS": 3600, "endAt": "2030-01-01T00:00:00Z",
}


class OrderRequestBody(BaseModel):
    """The body of `POST /api/orders/execute` as clients send it.

    Exactly one of `amountIn` / `amount`, and at most one of `slippageBps` / `slippage` /
    `slippageTolerance` (50 bps when none is given). `null` counts as not given.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"examples": [CANONICAL_EXAMPLE, FRACTION_EXAMPLE, PERCENT_EXAMPLE,
                                        LIMIT_EXAMPLE, SNIPER_EXAMPLE, TWAP_EXAMPLE,
                                        DCA_EXAMPLE]},
    )

    order_type: str | None = Field(
        None, alias="orderType",
        description="market (the default), limit, sniper, twap or dca."
    )
    token_in: str = Field(alias="tokenIn", description="Symbol (SOL, USDC, ...) or mint address.")
    token_out: str = Field(alias="tokenOut", description="Symbol or mint address.")
    amount_in: NumberText | None = Field(
        None, alias="amountIn", description='Human units of tokenIn, e.g. "1.5" (a string is best).'
    )
    amount: NumberText | None = Field(None, description="Alias of amountIn (older clients).")
    slippage_bps: NumberText | None = Field(
        None, alias="slippageBps",
        description=f"Whole basis points, {MIN_SLIPPAGE_BPS} to {MAX_SLIPPAGE_BPS}; default 50.",
    )
    slippage: NumberText | None = Field(
        None, description="Alias: a fraction, 0.01 = 100 bps (older clients)."
    )
    slippage_tolerance: NumberText | None = Field(
        None,
        alias="slippageTolerance",
        description="Alias: a percent, 0.5 = 50 bps (older clients).",
    )
    client_order_id: str | None = Field(
        None,
        alias="clientOrderId",
        description="Idempotency key: the same key always names the same order "
        "(1-128 printable ASCII characters, no leading or trailing blank).",
    )
    limit_price: NumberText | None = Field(
        None, alias="limitPrice",
        description='limit: execute once the order\'s own size fetches at least this many '
        'tokenOut per 1 tokenIn, net of fees and impact (e.g. SOL->USDC "185.5").',
    )
    target_price: NumberText | None = Field(
        None, alias="targetPrice", description="Alias of limitPrice (older clients)."
    )
    time_in_force: str | None = Field(
        None, alias="timeInForce", description="GTC (default) or GTD (needs expiresAt)."
    )
    expires_at: str | None = Field(
        None, alias="expiresAt",
        description="GTD: ISO 8601 time in the future (UTC without an offset); alone it means GTD.",
    )
    trigger: str | None = Field(
        None, description="sniper: pool_created (a pool of tokenOut is listed) or liquidity "
        "(a pool of tokenOut crosses minLiquidityUsd).",
    )
    min_liquidity_usd: NumberText | None = Field(
        None, alias="minLiquidityUsd", description="sniper: pool liquidity in USD to wait for."
    )
    max_price: NumberText | None = Field(
        None, alias="maxPrice",
        description='sniper: the most tokenIn one tokenOut may cost (e.g. USDC->WIF "0.002").',
    )
    token_out_decimals: NumberText | None = Field(
        None, alias="tokenOutDecimals",
        description="sniper: the decimals (0-18) of a tokenOut mint the registry does not know.",
    )
    slices: NumberText | None = Field(
        None, description="twap: how many child market orders amountIn is split into "
        "(1-1000; the first amountIn % slices carry one base unit more).",
    )
    interval_s: NumberText | None = Field(
        None, alias="intervalS",
        description="twap, dca: whole seconds between two slices (the first goes at once).",
    )
    amount_per_slice: NumberText | None = Field(
        None, alias="amountPerSlice",
        description='dca: tokenIn per slice in human units, e.g. "0.5"; slices go until '
        "amountIn is spent (the last one is the remainder) or endAt.",
    )
    end_at: str | None = Field(
        None, alias="endAt",
        description="dca: ISO 8601 time; no slice due at or after it is released.",
    )
    min_slice_price: NumberText | None = Field(
        None, alias="minSlicePrice",
        description="twap, dca: skip a slice whose own size fetches fewer tokenOut per 1 "
        "tokenIn (net) when it is due.",
    )
    max_slice_price: NumberText | None = Field(
        None, alias="maxSlicePrice",
        description="twap, dca: skip a slice whose own size fetches more tokenOut per 1 "
        "tokenIn (net) when it is due.",
    )

    def conditions(self) -> ConditionFields:
        limit_price = self.target_price if self.limit_price is None else self.limit_price
        return ConditionFields(limit_price, self.time_in_force, self.expires_at,
                               self.trigger, self.min_liquidity_usd, self.max_price)

    def schedule(self) -> ScheduleFields:
        return ScheduleFields(self.slices, self.interval_s, self.amount_per_slice, self.end_at,
                              self.min_slice_price, self.max_slice_price)


# How the route documents its body: it reads the body raw (see `parse_order_request`), so
# FastAPI cannot derive this from a parameter.
EXECUTE_BODY_OPENAPI: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": OrderRequestBody.model_json_schema(by_alias=True),
                "examples": {
                    "canonical": {"summary": "Canonical form", "value": CANONICAL_EXAMPLE},
                    "fraction": {
                        "summary": "Older clients: amount, slippage as a fraction",
                        "value": FRACTION_EXAMPLE,
                    },
                    "percent": {
                        "summary": "Older clients: slippageTolerance as a percent",
                        "value": PERCENT_EXAMPLE,
                    },
                    "limit": {"summary": "A limit order, good till a date",
                              "value": LIMIT_EXAMPLE},
                    "sniper": {"summary": "A sniper order on a liquidity threshold",
                               "value": SNIPER_EXAMPLE},
                    "twap": {"summary": "A twap: 10 SOL in 5 slices a minute apart, each "
                             "skipped below 150 USDC/SOL", "value": TWAP_EXAMPLE},
                    "dca": {"summary": "A dca: 100 USDC an hour until 1000 are spent or endAt",
                            "value": DCA_EXAMPLE},
                },
            }
        },
    }
}


class CancelRequestBody(BaseModel):
    """The optional body of `POST /api/orders/{id}/cancel`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    reason: str | None = Field(None, max_length=500, description="Why, for the audit trail.")


# --- the internal form ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A valid order request: its terms (resolved tokens, base units, whole bps), mapped from
    the body once; the router only adds the idempotency key."""

    terms: OrderTerms

    @property
    def order_type(self) -> OrderType:
        return self.terms.order_type

    @property
    def client_order_id(self) -> str | None:
        return self.terms.client_order_id

    def fingerprint(self) -> tuple[object, ...]:
        """What makes two requests "the same order" under one idempotency key.

        The key itself is left out (it is what is being compared), and spelling does not
        matter: `"amount": 1.5` and `"amountIn": "1.50"` are the same order.
        """
        return terms_fingerprint(self.terms)


def terms_fingerprint(terms: OrderTerms) -> tuple[object, ...]:
    """The terms as `OrderRequest.fingerprint` compares them (the key left out); the same for
    a request's terms and for the terms an order was accepted with (`api.order_records`)."""
    terms = replace(terms, client_order_id=None)
    return (terms.order_type.value, *(
        format(value.normalize(), "f") if isinstance(value, Decimal) else value
        for value in (getattr(terms, f.name) for f in fields(terms))))


# --- parsing ----------------------------------------------------------------------------------


def parse_order_request(body: bytes, registry: TokenRegistry, *, now: datetime,
                        min_interval_s: int = 1) -> OrderRequest:
    """Validate the body of an execute request (`now`: to refuse an expiry in the past;
    `min_interval_s`: the shortest twap/dca interval); raise an `ApiError` naming every bad
    field."""
    return _interpret(validated(OrderRequestBody, read_object(body)), registry, now,
                      min_interval_s)


def parse_cancel_request(body: bytes) -> CancelRequestBody:
    """The cancel body is optional: no body at all means "no reason given"."""
    document = read_object(body) if body.strip() else {}
    return validated(CancelRequestBody, document)


def _interpret(body: OrderRequestBody, registry: TokenRegistry, now: datetime,
               min_interval_s: int = 1) -> OrderRequest:
    found = Collector()
    order_type = found.check(lambda: _order_type(body.order_type))
    token_in = found.check(lambda: resolve_token("tokenIn", body.token_in, registry))
    token_out = found.check(lambda: _token_out(body, order_type, registry))
    amount = found.check(lambda: _amount_field(body))
    # Without a known tokenIn its decimals are unknown; the token error is reported already.
    amount_in = None
    if amount is not None and token_in is not None:
        amount_in = found.check(lambda: amount_units(*amount, token_in))
    slippage = found.check(lambda: _slippage_bps(body))
    key = found.check(lambda: _client_order_id(body.client_order_id))
    values, unreadable = _conditions(body, found)
    scheduled, unreadable_schedule = parse_schedule(body.schedule(), token_in, found)
    values |= scheduled
    unreadable |= unreadable_schedule
    if token_in is not None and token_out is not None:
        values |= {"token_in": token_in.mint, "token_out": token_out.mint,
                   "token_in_symbol": token_in.symbol, "token_out_symbol": token_out.symbol,
                   "token_in_decimals": token_in.decimals,
                   "token_out_decimals": token_out.decimals}
    if amount_in is not None:
        values["amount_in"] = amount_in
    if slippage is not None:
        values["slippage_bps"] = slippage[1]
    if order_type is not None:
        # The rule book names fields as the terms do; the answer names them as the client did.
        spelled = {"amount_in": amount[0] if amount else "amountIn",
                   "slippage_bps": slippage[0] if slippage else SLIPPAGE_BPS.name,
                   "limit_price": _limit_price_name(body)}
        for error in order_errors(order_type, values, now=now, unreadable=unreadable):
            found.errors.append(FieldError(spelled.get(error.field, camel(error.field)),
                                           error.message))
        too_short = interval_below_minimum(values, min_interval_s)
        if too_short is not None and order_type in (OrderType.TWAP, OrderType.DCA):
            found.errors.append(too_short)
    if found.errors:
        raise InvalidRequest(found.errors)
    assert order_type is not None
    terms_type = TERMS_OF_TYPE[order_type]
    takes = {f.name for f in fields(terms_type)}
    # Only a GTC timeInForce on a market order is left out here: the rule book let it pass.
    given: dict[str, Any] = {name: value for name, value in values.items() if name in takes}
    return OrderRequest(terms_type(**given, client_order_id=key))


def _conditions(body: OrderRequestBody,
                found: Collector) -> tuple[dict[str, object], frozenset[str]]:
    """The conditional terms as read. `targetPrice` (older clients) stands for `limitPrice`;
    what is wrong with it is reported under the name the client sent."""
    if body.target_price is not None and body.limit_price is not None:
        found.errors.append(FieldError(
            TARGET_PRICE, "is an alias of limitPrice; give one of them, not both"))
    before = len(found.errors)
    values, unreadable = parse_conditions(body.conditions(), found)
    name = _limit_price_name(body)
    found.errors[before:] = [FieldError(name, error.message) if error.field == "limitPrice"
                             else error for error in found.errors[before:]]
    return values, unreadable


def _limit_price_name(body: OrderRequestBody) -> str:
    """How the client spelled the limit price."""
    return TARGET_PRICE if body.target_price is not None and body.limit_price is None \
        else "limitPrice"


def _order_type(value: str | None) -> OrderType:
    if value is None:
        return OrderType.MARKET
    try:
        order_type = OrderType(value)
    except ValueError:
        expected = ", ".join(member.value for member in OrderType)
        message = f"unknown order type {shown(value)}; expected {expected}"
        raise invalid("orderType", message) from None
    return order_type


def _token_out(body: OrderRequestBody, order_type: OrderType | None,
               registry: TokenRegistry) -> Token:
    """A registered token; for a sniper also a mint not listed yet, given with its decimals."""
    decimals = _decimals(body.token_out_decimals)
    if body.token_out not in registry and order_type is OrderType.SNIPER and decimals is not None:
        if not _MINT.fullmatch(body.token_out):
            raise invalid("tokenOut", f"{shown(body.token_out)} is not a mint address (base58, "
                          "32 to 44 characters)")
        # Until a pool lists it, the mint's head stands in for a symbol nobody has told us.
        return Token(body.token_out[:6], body.token_out, decimals)
    token = resolve_token("tokenOut", body.token_out, registry)
    if decimals is not None and decimals != token.decimals:
        raise invalid("tokenOutDecimals", f"{token.symbol} has {token.decimals} decimals, "
                      f"not {decimals}")
    return token


def _decimals(text: str | None) -> int | None:
    if text is None:
        return None
    problem = None
    if not (text.isascii() and text.isdigit() and len(text) <= 3):
        problem = f"{shown(text)} is not a whole number from 0 to {MAX_TOKEN_DECIMALS}"
    else:
        problem = decimals_problem(int(text))  # before a Token is built with them
    if problem is not None:
        raise invalid("tokenOutDecimals", problem)
    return int(text)


def _amount_field(body: OrderRequestBody) -> tuple[str, str]:
    """(the field the client used, its text): exactly one of amountIn and its alias."""
    given = _given({"amountIn": body.amount_in, "amount": body.amount})
    if not given:
        raise invalid("amountIn", 'is required: the amount of tokenIn in human units, e.g. "1.5"')
    if len(given) > 1:
        raise invalid("amount", "is an alias of amountIn; give one of them, not both")
    ((field, text),) = given.items()
    return field, text


def _slippage_bps(body: OrderRequestBody) -> tuple[str, int]:
    """(the field the client used, whole bps); the range is the rule book's."""
    given = _given({
        SLIPPAGE_BPS.name: body.slippage_bps,
        SLIPPAGE_FRACTION.name: body.slippage,
        SLIPPAGE_PERCENT.name: body.slippage_tolerance,
    })
    if not given:
        return SLIPPAGE_BPS.name, DEFAULT_SLIPPAGE_BPS
    if len(given) > 1:
        first, second, *_ = given
        raise invalid(second, f"sets the same slippage as {first}, in other units; give only one")
    ((name, text),) = given.items()
    spec = next(s for s in (SLIPPAGE_BPS, SLIPPAGE_FRACTION, SLIPPAGE_PERCENT) if s.name == name)
    return name, spec.bps(text)


def _client_order_id(value: str | None) -> str | None:
    return None if value is None else check_idempotency_key("clientOrderId", value)


def _given(candidates: dict[str, str | None]) -> dict[str, str]:
    """The fields among `candidates` the client actually set (`null` counts as not set)."""
    return {name: value for name, value in candidates.items() if value is not None}
