"""Which market topic a market event goes to: declared once for every producer of them (the
feed's publisher, the execution stage publishing a swap's impact)."""

from __future__ import annotations

from domain.market_events import POOL_EVENTS, MarketEvent
from oee.settings import Topics


def topic_of(event: MarketEvent, topics: Topics) -> str:
    """`market.pools` for listings and liquidity changes, `market.prices` for the rest."""
    return topics.pools if isinstance(event, POOL_EVENTS) else topics.prices
