"""The market as this process currently sees it: a snapshot replaced as market data arrives."""

from __future__ import annotations

from domain.market import Market


class MarketView:
    def __init__(self, initial: Market) -> None:
        self._market = initial

    def current(self) -> Market:
        return self._market

    def replace(self, market: Market) -> None:
        self._market = market
