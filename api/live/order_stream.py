"""`WS /api/orders/{id}/stream[?afterSeq=N]`: one order's events, each once, in seq order.

Consumes the fan-out (live) and the read model (catch-up); produces the order's messages
after `afterSeq` (default 0: all of them) and closes 1000 after the terminal one, whenever
the client connects: before the first event, in the middle, or after the end.

The merge is gapless because the live subscription is opened FIRST (everything produced from
then on is buffered), and only then are the recent cache and the read model read. The read
model is re-read, on a schedule, only while it may hold events the live feed cannot bring:
  - while a gap separates what was delivered from what is buffered (the projector lags);
  - while the order is unknown (the edge answers 201 before OrderAccepted is written);
  - while the last event delivered predates this process's feed (an order begun earlier).

Each re-read that brings nothing new doubles the wait before the next (up to
`catch_up_max_poll_s`); anything new resets it.

With a viewer that is not an admin, nothing is sent until the order's owner is known (from
the live OrderAccepted, or the read model's `orders.owner`): another owner's order closes
4404 exactly as an unknown one does.

While the read model is unreachable a stream keeps serving what the live feed brings (an
order placed after this process started needs nothing else) and retries the read model on
the same schedule; only the deadlines end it, with a reason naming the read model (1011).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from api.auth.keys import Principal
from api.live.config import LiveConfig
from api.live.connection import (
    BAD_REQUEST,
    NORMAL,
    NOT_FOUND,
    SERVER_ERROR,
    Closing,
    Connection,
    StreamClosed,
)
from api.live.fanout import Fanout, Feed
from api.live.history import OrderHistory, ReadModelUnavailable
from api.live.timeline import OrderTimeline
from api.order_ids import canonical_order_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OrderStream:
    """One client's stream of one order."""

    fanout: Fanout
    history: OrderHistory
    config: LiveConfig
    order_id: str
    after_seq: int
    viewer: Principal

    @classmethod
    def parse(cls, fanout: Fanout, history: OrderHistory, config: LiveConfig, order_id: str,
              after_seq: str | None, viewer: Principal) -> OrderStream:
        """Validate the path and query; raises `StreamClosed` (4404, 4400) with the reason."""
        canonical = canonical_order_id(order_id)
        if canonical is None:  # names no order: as for an unknown one (see api.order_ids)
            raise StreamClosed(NOT_FOUND, f"order {order_id[:60]!r} not found")
        if after_seq is None:
            return cls(fanout, history, config, canonical, 0, viewer)
        if not after_seq.isascii() or not after_seq.isdigit() or len(after_seq) > 12:
            raise StreamClosed(BAD_REQUEST, "afterSeq must be a non-negative integer")
        return cls(fanout, history, config, canonical, int(after_seq), viewer)

    async def __call__(self, connection: Connection) -> Closing:
        await self.fanout.ready()
        timeline = OrderTimeline(self.after_seq)
        with self.fanout.order_feed(self.order_id) as feed:  # live first, buffered
            connection.watch(feed)
            timeline.add(self.fanout.recent(self.order_id))
            if not self.viewer.sees(None):
                await self._wait_for_owner(feed, timeline)
            reachable = await self._catch_up(timeline)
            await self._follow(connection, feed, timeline, reachable)
        status = timeline.status.value if timeline.status else "finished"
        return Closing(NORMAL, f"order {status}")

    async def _follow(self, connection: Connection, feed: Feed, timeline: OrderTimeline,
                      reachable: bool) -> None:
        started = time.monotonic()
        wait = self.config.catch_up_poll_s
        next_poll = started + wait
        gap_since: float | None = None
        while True:
            for message in timeline.take_ready():
                await connection.send(message.text)
            if timeline.finished:
                return
            now = time.monotonic()
            gap_since = (gap_since or now) if timeline.has_gap else None
            self._check_deadlines(timeline, now - started, now - (gap_since or now), reachable)
            if not self._needs_read_model(timeline):
                timeline.add([await feed.take(), *feed.drain()])
            elif not await _take_until(feed, timeline, next_poll - now):
                before = timeline.next_seq
                reachable = await self._catch_up(timeline)
                quiet = timeline.next_seq == before
                wait = min(wait * 2, self.config.catch_up_max_poll_s) if quiet else (
                    self.config.catch_up_poll_s)
                next_poll = time.monotonic() + wait

    def _needs_read_model(self, timeline: OrderTimeline) -> bool:
        last = timeline.last
        return (timeline.has_gap or not timeline.known or last is None
                or not self.fanout.is_live(last.partition, last.offset))

    def _check_deadlines(self, timeline: OrderTimeline, waited: float, gap_for: float,
                         reachable: bool) -> None:
        late = (not timeline.known and waited > self.config.unknown_order_wait_s
                or gap_for > self.config.gap_deadline_s)
        if late and not reachable:  # what is missing may well be there: we cannot tell
            raise StreamClosed(SERVER_ERROR, f"the read model is unavailable; reconnect with "
                                             f"afterSeq={timeline.next_seq - 1}")
        if not timeline.known and waited > self.config.unknown_order_wait_s:
            where = f" at or after seq {self.after_seq}" if self.after_seq else ""
            raise StreamClosed(NOT_FOUND, f"order {self.order_id} not found{where}")
        if gap_for > self.config.gap_deadline_s:
            resume = timeline.next_seq - 1
            raise StreamClosed(SERVER_ERROR, f"the read model lags: seq {resume + 1} is missing; "
                                             f"reconnect with afterSeq={resume}")

    async def _wait_for_owner(self, feed: Feed, timeline: OrderTimeline) -> None:
        """Return once the viewer may see the order; close 4404 as for an unknown order if
        it may not, or if no owner shows up within `unknown_order_wait_s`."""
        started, wait = time.monotonic(), self.config.catch_up_poll_s
        while True:
            owner = self._live_owner()
            if owner is None:
                owner = await self._stored_owner()
            if owner is not None:
                if self.viewer.sees(owner[0]):
                    return
                break
            if time.monotonic() - started > self.config.unknown_order_wait_s:
                break
            if not await _take_until(feed, timeline, wait):
                wait = min(wait * 2, self.config.catch_up_max_poll_s)
        raise StreamClosed(NOT_FOUND, f"order {self.order_id} not found")

    def _live_owner(self) -> tuple[str | None] | None:
        for message in self.fanout.recent(self.order_id):
            if message.type == "OrderAccepted":
                return (message.owner,)
        return None

    async def _stored_owner(self) -> tuple[str | None] | None:
        try:
            return await self.history.owner_of(self.order_id)
        except ReadModelUnavailable as error:
            log.warning("order stream %s: owner unknown: %s", self.order_id, error)
            return None

    async def _catch_up(self, timeline: OrderTimeline) -> bool:
        """Add what the read model holds; False if it could not be read (retried later)."""
        # From the seq before the next one: that row gives a resumed stream its status.
        first = max(timeline.next_seq - 1, 1)
        try:
            timeline.add(await self.history.events_from(self.order_id, first))
        except ReadModelUnavailable as error:
            log.warning("order stream %s: %s; serving the live feed meanwhile",
                        self.order_id, error)
            return False
        return True


async def _take_until(feed: Feed, timeline: OrderTimeline, timeout: float) -> bool:
    """Add what the live feed brings within `timeout` seconds; False if it brought nothing."""
    if timeout <= 0:
        return False
    try:
        async with asyncio.timeout(timeout):
            first = await feed.take()
    except TimeoutError:
        return False
    timeline.add([first, *feed.drain()])
    return True
