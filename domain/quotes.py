"""Value types shared by routing (which produces them) and orders (whose events carry them).

Pure data: amounts are integers in base units, prices and impacts are Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

SPLIT: Final = "split"  # the decision's venue when its legs use several venues (not a venue)


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """What one venue (or one path through a venue) offers for the whole order."""

    venue: str  # a registered venue's name (domain.venues)
    amount_in: int  # base units of the first mint in `path`
    amount_out: int  # base units of the last mint in `path`, after fees and impact
    fee: int  # base units of token in, charged by the pool(s)
    price_impact_bps: Decimal  # how far the execution price is below the spot price
    path: tuple[str, ...]  # mints: (in, out) direct, (in, mid, out) multi-hop


@dataclass(frozen=True, slots=True)
class RouteLeg:
    """One slice of the execution: `amount_in` of the order sent through `venue` along `path`."""

    venue: str
    amount_in: int
    amount_out: int
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The routing transparency log: every quote considered, the chosen legs and why."""

    token_in: str  # mint
    token_out: str  # mint
    amount_in: int
    quotes: tuple[VenueQuote, ...]
    legs: tuple[RouteLeg, ...]
    amount_out: int  # sum of the legs' amount_out
    reason: str

    @property
    def venue(self) -> str:
        """The venue that won, or SPLIT when the order is spread over several."""
        venues = {leg.venue for leg in self.legs}
        return venues.pop() if len(venues) == 1 else SPLIT
