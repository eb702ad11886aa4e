"""The routing stage: turns a QuoteRoute work item into a RouteFound / RouteNotFound report.

Consumes decoded `QuoteRoute` items (the Faust shell decodes them) and produces one report per
item to `orders.commands` through the `Outbox` port. Both venues are asked in parallel, each answering after its own simulated network latency; the
pure router then picks the best net output (or a split, or a multi-hop path) from the market as
it stands when the answers are in. The agent loop only spawns the task and moves on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

from domain.orders.commands import Command, RouteFound, RouteNotFound
from domain.routing import NoRoute, best_route
from domain.venues import VENUES
from domain.work import QuoteRoute
from streams.in_flight import InFlight
from streams.ports import Clock, MarketSource, Outbox, VenueQuoter

log = logging.getLogger(__name__)


class VenueLatency:
    """Simulated round trip to a venue's quote endpoint (seeded, configurable down to 0)."""

    def __init__(self, min_ms: int, max_ms: int, rng: random.Random) -> None:
        self._min_ms, self._max_ms, self._rng = min_ms, max_ms, rng

    async def round_trip(self) -> None:
        if self._max_ms <= 0:
            return
        await asyncio.sleep(self._rng.uniform(self._min_ms, self._max_ms) / 1000)

    async def all_venues(self) -> None:
        await asyncio.gather(*(self.round_trip() for _ in VENUES))


class RoutingStage:
    def __init__(self, market: MarketSource, venues: VenueQuoter, outbox: Outbox,
                 in_flight: InFlight, clock: Clock) -> None:
        self._market = market
        self._venues = venues
        self._outbox = outbox
        self.in_flight = in_flight
        self._clock = clock

    async def accept(self, work: QuoteRoute) -> asyncio.Task[None]:
        """Start routing `work`; returns the task (its record is acked once it ended)."""
        return await self.in_flight.spawn(self._route(work))

    async def _route(self, work: QuoteRoute) -> None:
        try:
            await self._venues.all_venues()
            report = self._report(work)
            await (await self._outbox.command(report))
        except Exception:  # the order's watchdog re-drives routing; nothing is lost
            log.exception("routing %s attempt %d failed", work.order_id, work.attempt)

    def _report(self, work: QuoteRoute) -> Command:
        command_id, now = str(uuid.uuid4()), self._clock()
        try:
            decision = best_route(self._market.current(), work.token_in, work.token_out,
                                  work.amount_in)
        except NoRoute as exc:
            return RouteNotFound(command_id=command_id, order_id=work.order_id, issued_at=now,
                                 attempt=work.attempt, error_code="NoRoute", message=str(exc),
                                 transient=False)
        return RouteFound(command_id=command_id, order_id=work.order_id, issued_at=now,
                          attempt=work.attempt, decision=decision)
