"""Work the writer hands straight to this worker's own stage: one fetch hop fewer per stage.

A work item's record is produced and acknowledged as before (a stage never acts on work the
store may not have). Then, if this worker consumes the partition the record landed on, the
stage starts on the item at once instead of waiting for the record to come back through a
fetch and Faust's hand-over (≈4–5 ms a hop at light load, docs/DESIGN.md). The record still
arrives: the stage's loop asks `claim` first and gets the task started for it, acks the record
once that task ended, exactly as for a task it started itself, and starts no second one.

Whichever comes first wins, because the broker's answer to the producer and the record's
fetch race: the writer `reserve`s the item before sending it; if the record is consumed
before the answer came, `claim` marks the reservation taken (the stage starts on the record as
usual) and `hand` then starts nothing. Every reservation is resolved by `hand` (a delivery
never stays pending: streams.event_producer), and a started task whose record went to another
worker (its partition moved in between) is forgotten at the next assignment; that worker runs
the item again, as after any rebalance (both stages are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

from domain.orders.commands import Command
from domain.orders.events import Event
from domain.orders.status import OrderStatus
from domain.work import Work
from streams.ports import Delivery, Outbox, failure_of

log = logging.getLogger(__name__)

Source = tuple[str, int]  # a stage's (topic, partition)
Start = Callable[[Work], Awaitable[Delivery]]  # starts the item's task and returns it
_RESERVED: Final = "reserved"  # sent, its answer not seen yet
_TAKEN: Final = "taken"  # its record was consumed first: the stage started on it


class LocalStages:
    def __init__(self, start: Start) -> None:
        self._start = start
        self._owned: set[Source] = set()
        self._items: dict[Work, str | tuple[Delivery, Source]] = {}

    def assigned(self, sources: Iterable[Source]) -> None:
        """This worker now consumes exactly `sources`: started tasks whose records went
        elsewhere are forgotten (those records are another worker's)."""
        self._owned = set(sources)
        for item, entry in list(self._items.items()):
            if isinstance(entry, tuple) and entry[1] not in self._owned:
                del self._items[item]

    def revoked(self) -> None:
        """Nothing is owned until the next assignment (the group protocol is eager)."""
        self._owned = set()

    def reserve(self, item: Work) -> bool:
        """Before `item` is sent; False if an equal item is already on its way (that one is
        handed over, this one takes the ordinary path)."""
        if item in self._items:
            return False
        self._items[item] = _RESERVED
        return True

    async def hand(self, item: Work, delivered: object) -> None:
        """`item`'s record was answered (`delivered`: the broker's metadata, None if it
        failed): start it here if its partition is this worker's and its record was not
        consumed first."""
        if self._items.pop(item, None) != _RESERVED or delivered is None:
            return
        source = (getattr(delivered, "topic", None), getattr(delivered, "partition", None))
        if not (isinstance(source[0], str) and isinstance(source[1], int)) \
                or source not in self._owned:
            return
        started: Delivery = asyncio.get_running_loop().create_future()
        started.add_done_callback(failure_of)  # (one forgotten at an assignment is not read)
        entry = (started, (source[0], source[1]))
        self._items[item] = entry  # claimable from now on
        try:
            task = await self._start(item)
        except Exception as exc:  # noqa: BLE001 - logged; the record path runs the item
            log.exception("%s not started locally", type(item).__name__)
            if self._items.get(item) is entry:  # not claimed yet: its record starts it
                del self._items[item]
            started.set_exception(exc)  # (claimed: like a task that failed, left unacked)
            return
        task.add_done_callback(lambda done: _settle(started, done))

    def claim(self, item: Work) -> Delivery | None:
        """The task started here for `item`'s record, once; None: start it as usual."""
        entry = self._items.get(item)
        if isinstance(entry, tuple):
            del self._items[item]
            return entry[0]
        if entry == _RESERVED:
            self._items[item] = _TAKEN
        return None

    def __len__(self) -> int:
        return len(self._items)


def _settle(started: Delivery, task: Delivery) -> None:
    if task.cancelled():
        started.cancel()
    elif task.exception() is not None:
        started.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        started.set_result(None)


class HandingOutbox:
    """The writer's `Outbox`: a work item's delivery resolves once its record is acknowledged
    and the local stage (if it owns the record) has started on it."""

    def __init__(self, inner: Outbox, local: LocalStages) -> None:
        self._inner, self._local = inner, local

    async def events(self, partition: int, events: Sequence[Event],
                     statuses: Sequence[OrderStatus], epoch: int | None = None,
                     heads: dict[str, bytes] | None = None) -> list[Delivery]:
        return await self._inner.events(partition, events, statuses, epoch, heads)

    async def work(self, work: Work) -> Delivery:
        if not self._local.reserve(work):
            return await self._inner.work(work)
        try:
            delivery = await self._inner.work(work)
        except BaseException:
            await self._local.hand(work, None)
            raise
        return asyncio.ensure_future(self._handed(work, delivery))

    async def command(self, command: Command) -> Delivery:
        return await self._inner.command(command)

    async def _handed(self, work: Work, delivery: Delivery) -> object:
        try:
            delivered = await delivery
        except BaseException:
            await self._local.hand(work, None)
            raise
        await self._local.hand(work, delivered)
        return delivered
