"""Prices a parent's due slice as its timer fires: the shell half of a twap/dca price bound.

Consumes a timer's command and the worker's market view; produces the command to send: a
`SliceDue` that asks for a price (`needs_price`, the parent has bounds) gets `observed_price`,
the net price its own size fetches on the best route now (tokenOut per 1 tokenIn, as a limit
order is priced: `waiting_book.executable_price`), or stays without one when no route exists
(the decider skips the slice: `no_quote`). Every other command passes unchanged. The decider
compares the price with the bounds; the market is read here because the core reads no market.
"""

from __future__ import annotations

from dataclasses import replace

from domain.orders.commands import Command, SliceDue
from domain.waiting_book import Direction, executable_price
from streams.ports import MarketSource


class SlicePricer:
    def __init__(self, market: MarketSource) -> None:
        self._market = market

    def __call__(self, command: Command) -> Command:
        if not isinstance(command, SliceDue) or not command.needs_price:
            return command
        price = executable_price(self._market.current(),
                                 Direction(command.token_in, command.token_out),
                                 command.amount_in)
        return replace(command, observed_price=price)
