"""The trigger stage: fires waiting limit and sniper orders when the market meets them.

It lives in the order agent's process and holds only the orders of this worker's partitions:
its `WaitingBook` is fed from the folded states (each partition loaded, each decision of the
writer: `track`) and forgets revoked partitions (`forget`). The market follower calls
`on_market_change` once per changed pair and batch, inside its consume loop, so that only
notes what changed. `run()` does the work: it evaluates the orders the changed pairs can move
against the market as it is now (coalescing however many ticks came in meanwhile) and
produces a report per order that fired (`PriceReached`, `PoolTriggerFired`) to
`orders.commands`. The single writer decides: a report for an order cancelled or expired
meanwhile, or a repeated one, decides nothing. Every `best_price_interval_s` it also sends the
waiting limit orders whose pairs moved their new best price (`ObservePrice`).

After a restart or a rebalance the book is folded again from the event store and every waiting
order is evaluated against the market as it stands; the last pool events seen are kept, so a
sniper whose listing came while no worker held its partition still fires.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from domain.market_events import POOL_EVENTS, MarketChange, Pair
from domain.orders.commands import Command, ObservePrice, PoolTriggerFired, PriceReached
from domain.orders.state import OrderState
from domain.waiting_book import (
    Direction,
    Fire,
    PoolEvent,
    WaitingBook,
    WaitingLimit,
    WaitingSniper,
    waiting_of,
)
from streams.market_view import MarketView

log = logging.getLogger(__name__)

Send = Callable[[Command], Awaitable[object]]

RECENT_POOL_EVENTS: Final = 1_000  # pool events kept for snipers that (re)join the book
_YIELD_EVERY: Final = 256  # price computations between two yields to the event loop


@dataclass(slots=True)
class TriggerStats:
    changes: int = 0  # market changes noted (one per pair and batch)
    rounds: int = 0  # evaluation rounds run
    priced: int = 0  # exact prices computed (routes run) for waiting orders
    fired: int = 0  # reports sent
    observed: int = 0  # ObservePrice commands sent


class TriggerStage:
    def __init__(self, market: MarketView, send: Send, clock: Callable[[], datetime], *,
                 best_price_interval_s: float, book: WaitingBook | None = None) -> None:
        self.book = book or WaitingBook()
        self._market = market
        self._send = send
        self._clock = clock
        self._interval = best_price_interval_s
        self._dirty: set[Pair] = set()
        self._fresh: set[str] = set()  # new to the book (or to be retried): evaluate alone
        self._pool_events: list[PoolEvent] = []
        self._recent: deque[PoolEvent] = deque(maxlen=RECENT_POOL_EVENTS)
        self._last_event: dict[Pair, str] = {}
        self._unobserved: set[Direction] = set()  # directions whose best prices may have moved
        self._wake = asyncio.Event()
        self.stats = TriggerStats()

    # --- the orders (from the writer) ----------------------------------------------------------

    def track(self, state: OrderState, answered: Command | None = None) -> None:
        """The writer's latest state of an order (`answered`: the command it just decided)."""
        waiting = waiting_of(state)
        if waiting is None:
            self.book.remove(state.order_id)
            self._fresh.discard(state.order_id)
            return
        if self.book.put(waiting):
            self._fresh.add(state.order_id)
            if isinstance(waiting, WaitingLimit):
                self._unobserved.add(waiting.direction)
            self._wake.set()
        elif isinstance(answered, PriceReached | PoolTriggerFired):
            # The writer did not fire it (the report no longer held): the next market change
            # of its pairs evaluates it again (not at once: a report the writer keeps
            # refusing must not turn into a loop).
            self.book.unfire(state.order_id)

    def forget(self, order_ids: Iterable[str]) -> None:
        """Drop the orders of revoked partitions: their next owner folds them anew."""
        for order_id in order_ids:
            self.book.remove(order_id)
            self._fresh.discard(order_id)

    # --- the market (from the follower) -----------------------------------------------------------

    def on_market_change(self, change: MarketChange) -> None:
        self.stats.changes += 1
        self._dirty.add(change.pair)
        if change.events:
            self._last_event[change.pair] = change.events[-1].event_id
        for event in change.events:
            if isinstance(event, POOL_EVENTS):
                self._pool_events.append(event)
                self._recent.append(event)
        self._wake.set()

    # --- the work ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate until cancelled. Start it once the market has caught up: every order
        loaded so far is evaluated against the market as it is then."""
        self._fresh.update(order.order_id for order in self.book.orders())
        self._unobserved.update(self.book.directions())
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self._interval
        self._wake.set()
        while True:
            await self._sleep(next_sweep - loop.time() if self._interval > 0 else None)
            try:
                await self.evaluate()
                if self._interval > 0 and loop.time() >= next_sweep:
                    next_sweep = loop.time() + self._interval
                    await self.observe_prices()
            except Exception:  # the outermost loop of this task: record it, keep firing
                log.exception("trigger evaluation failed; the orders stay in the book")

    async def evaluate(self) -> list[Fire]:
        """Fire what the changes noted since the last round (and the new orders) meet."""
        self.stats.rounds += 1
        market = self._market.current()
        pairs, self._dirty = self._dirty, set()
        fresh, self._fresh = self._fresh, set()
        events, self._pool_events = self._pool_events, []
        directions = self.book.affected(pairs, market)
        self._unobserved.update(directions)
        found = self.book.crossings(market, directions)
        again = self.book.crossings_of(market, fresh)
        self.stats.priced += found.evaluated + again.evaluated
        fires = [*found.fires, *again.fires]
        for event in events:
            fires.extend(self.book.sniped(market, event))
        snipers = [o for o in fresh if isinstance(self.book.get(o), WaitingSniper)]
        if snipers:
            for event in self._recent:
                fires.extend(self.book.sniped(market, event, snipers))
        fired = _once_each(fires)
        await self._report(fired)
        return fired

    async def observe_prices(self) -> int:
        """Send each waiting limit order of a moved direction its best price, if it changed."""
        directions, self._unobserved = self._unobserved, set()
        market, sent, priced = self._market.current(), 0, 0
        for direction in directions:
            prices: dict[int, Decimal | None] = {}
            for order in self.book.limits(direction):
                if order.amount_in not in prices:
                    prices[order.amount_in] = self.book.price(market, direction, order.amount_in)
                    priced += 1
                    if priced % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # let the writer and the follower run
                price = prices[order.amount_in]
                if price is None or price == order.best_price:
                    continue
                await self._send(ObservePrice(command_id=str(uuid.uuid4()),
                                              order_id=order.order_id, issued_at=self._clock(),
                                              best_price=price))
                sent += 1
        self.stats.priced += priced
        self.stats.observed += sent
        return sent

    async def _report(self, fires: list[Fire]) -> None:
        for index, fire in enumerate(fires):
            self.book.mark_fired(fire.order.order_id)
            try:
                await self._send(self._command(fire))
            except BaseException:
                for unsent in fires[index:]:  # evaluated again at the next wake
                    self.book.unfire(unsent.order.order_id)
                    self._fresh.add(unsent.order.order_id)
                raise
            self.stats.fired += 1

    def _command(self, fire: Fire) -> Command:
        order, now, command_id = fire.order, self._clock(), str(uuid.uuid4())
        if isinstance(order, WaitingLimit):
            direct = Pair.of(order.direction.token_in, order.direction.token_out)
            return PriceReached(command_id=command_id, order_id=order.order_id, issued_at=now,
                                observed_price=fire.price,
                                market_event_id=self._last_event.get(direct))
        assert fire.event is not None, "a sniper fires on a pool event"
        return PoolTriggerFired(command_id=command_id, order_id=order.order_id, issued_at=now,
                                trigger=order.trigger, venue=fire.event.venue,
                                liquidity_usd=fire.event.liquidity_usd,
                                observed_price=fire.price, market_event_id=fire.event.event_id)

    async def _sleep(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            pass  # time for the price sweep
        self._wake.clear()


def _once_each(fires: list[Fire]) -> list[Fire]:
    """The first fire of each order (a sniper may meet several events of one round)."""
    seen: set[str] = set()
    unique = []
    for fire in fires:
        if fire.order.order_id not in seen:
            seen.add(fire.order.order_id)
            unique.append(fire)
    return unique
