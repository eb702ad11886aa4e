"""Public JSON shapes shared by the routers: camelCase on the wire, exact amounts as strings."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from domain.tokens import Token, format_amount


class PublicModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class TokenInfo(PublicModel):
    symbol: str
    mint: str
    decimals: int

    @classmethod
    def of(cls, token: Token) -> TokenInfo:
        return cls(symbol=token.symbol, mint=token.mint, decimals=token.decimals)


class Amount(PublicModel):
    amount: str  # exact, human units: "1.5"
    base_units: str  # exact, integer base units: "1500000000"

    @classmethod
    def of(cls, base_units: int | Decimal, token: Token) -> Amount:
        units = int(base_units)
        return cls(amount=format_amount(units, token), base_units=str(units))
