"""An order's terms, declared once: what the trader asked for, one frozen type per order type.

`ExecuteOrder` carries them, `OrderAccepted` records them, `OrderState` keeps them; nothing
copies them field by field. Every order swaps `amount_in` base units of `token_in` (a mint)
into `token_out` within `slippage_bps` (`BaseTerms`); a market order asks nothing more, a limit
order adds its price, a sniper order its trigger, threshold and price guard, and both of these
wait, so both may be good till a date (`WaitingTerms`). The rules over the values are the rule
book's (`rules`); the type only says which terms exist.

Prices are Decimals in human units, tokenOut received per 1 tokenIn (as limit prices are
written), except a sniper's `max_price`: the most tokenIn paid per 1 tokenOut.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Final, get_args

from domain.orders.status import OrderType, TimeInForce, Trigger


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseTerms:
    """What every order asks for."""

    ORDER_TYPE: ClassVar[OrderType]

    token_in: str
    token_out: str
    token_in_symbol: str
    token_out_symbol: str
    token_in_decimals: int
    token_out_decimals: int
    amount_in: int
    slippage_bps: int
    client_order_id: str | None = None

    @property
    def order_type(self) -> OrderType:
        return self.ORDER_TYPE

    @property
    def waits_for(self) -> Trigger | None:
        """What the order waits for before it executes; None: it executes at once."""
        return None

    @property
    def deadline(self) -> datetime | None:
        """When a GTD order expires; None: never."""
        return None

    def expired_at(self, now: datetime) -> bool:
        """Has a GTD order's time run out by `now`?"""
        deadline = self.deadline
        return deadline is not None and now >= deadline


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketTerms(BaseTerms):
    """Execute at once, at the best route's price within the slippage."""

    ORDER_TYPE: ClassVar[OrderType] = OrderType.MARKET


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingTerms(BaseTerms):
    """An order that waits for a condition: until cancelled (GTC) or until `expires_at`."""

    time_in_force: TimeInForce = TimeInForce.GTC
    expires_at: datetime | None = None  # GTD: expire if not executing by then

    @property
    def deadline(self) -> datetime | None:
        return self.expires_at


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitTerms(WaitingTerms):
    """Execute once the order's own size fetches `limit_price`, net of fees and impact."""

    ORDER_TYPE: ClassVar[OrderType] = OrderType.LIMIT

    limit_price: Decimal

    @property
    def waits_for(self) -> Trigger | None:
        return Trigger.PRICE


@dataclass(frozen=True, slots=True, kw_only=True)
class SniperTerms(WaitingTerms):
    """Execute when a pool of `token_out` is listed (pool_created) or crosses
    `min_liquidity_usd` (liquidity), if one tokenOut costs at most `max_price` tokenIn."""

    ORDER_TYPE: ClassVar[OrderType] = OrderType.SNIPER

    trigger: Trigger
    min_liquidity_usd: Decimal | None = None
    max_price: Decimal | None = None

    @property
    def waits_for(self) -> Trigger | None:
        return self.trigger


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTerms(BaseTerms):
    """A parent order: it never swaps itself, it releases child market orders (slices) of
    its pair and slippage, one every `interval_s` seconds from its acceptance (the first at
    once). A slice whose own size fetches a price (tokenOut per 1 tokenIn, net) outside
    [`min_slice_price`, `max_slice_price`] when it is due is skipped, not executed.
    `slice_amounts` (in `domain.orders.schedule`) says how `amount_in` is cut."""

    interval_s: int
    min_slice_price: Decimal | None = None
    max_slice_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TwapTerms(ScheduledTerms):
    """`amount_in` in `slices` slices as equal as whole base units allow (the first
    `amount_in % slices` slices carry one base unit more)."""

    ORDER_TYPE: ClassVar[OrderType] = OrderType.TWAP

    slices: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DcaTerms(ScheduledTerms):
    """`amount_per_slice` per slice until `amount_in` is spent (the last slice is the
    remainder), releasing no slice due at or after `end_at`."""

    ORDER_TYPE: ClassVar[OrderType] = OrderType.DCA

    amount_per_slice: int
    end_at: datetime | None = None


OrderTerms = MarketTerms | LimitTerms | SniperTerms | TwapTerms | DcaTerms
ParentTerms = TwapTerms | DcaTerms
PARENT_TERMS: Final = (TwapTerms, DcaTerms)  # for isinstance()

TERMS_TYPES: Final[tuple[type[OrderTerms], ...]] = get_args(OrderTerms)
TERMS_OF_TYPE: Final = {cls.ORDER_TYPE: cls for cls in TERMS_TYPES}
COMMON_FIELDS: Final = frozenset(field.name for field in dataclasses.fields(BaseTerms))


def extra_fields(cls: type[BaseTerms]) -> tuple[str, ...]:
    """The fields an order type adds to the common ones, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in COMMON_FIELDS)
