"""The ports of the stream workers' application layer: what the writer and the stages need.

The order writer, the routing stage, the execution stage and the timer wheel take decoded
messages (commands, work items) and talk to the outside only through these protocols, so the
unit tests run them against in-memory fakes and the Faust shell (`streams.app`) plugs in the
Kafka and PostgreSQL adapters. A `Delivery` is the broker's answer to one produced record:
a future that resolves once the record is acknowledged, or fails if it never will be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.market import Market
from domain.market_events import MarketEvent
from domain.orders.commands import Command
from domain.orders.events import Event
from domain.orders.status import OrderStatus
from domain.quotes import RouteLeg
from domain.work import Work
from streams.chain import ChainTransaction, Settlement, Submission

Clock = Callable[[], datetime]
Delivery = asyncio.Future[Any]


def failure_of(done: Delivery) -> BaseException | None:
    """Why a finished delivery failed; None if it succeeded."""
    if done.cancelled():
        return asyncio.CancelledError("the delivery was cancelled")
    return done.exception()


class Outbox(Protocol):
    """Produces records; each call returns once the records are enqueued, with their futures."""

    async def events(self, partition: int, events: Sequence[Event],
                     statuses: Sequence[OrderStatus], epoch: int | None = None,
                     heads: dict[str, bytes] | None = None) -> list[Delivery]:
        """`statuses[i]`: the order's status after `events[i]`, for the event's envelope;
        `epoch`: the writer's claim on the partition (schemas.writer_fence); `heads`: the
        partition's chain heads (order id -> its last event's hash, schemas.chain): each
        event is chained to its order's head, and `heads` advances once all are enqueued
        (untouched if the call raises). None: the events are not chained."""
        ...

    async def work(self, work: Work) -> Delivery: ...

    async def command(self, command: Command) -> Delivery: ...


class MarketSource(Protocol):
    def current(self) -> Market: ...


class VenueQuoter(Protocol):
    """The venues' quote endpoints: returns once every venue has answered."""

    async def all_venues(self) -> None: ...


class Chain(Protocol):
    """The chain the execution stage submits to (`streams.chain.SimulatedChain`)."""

    async def submit(self, order_id: str, attempt: int, signature: str, min_amount_out: int,
                     now: datetime, legs: tuple[RouteLeg, ...] = (),
                     market: Market | None = None) -> Submission: ...

    async def settle(self, tx: ChainTransaction, legs: tuple[RouteLeg, ...],
                     min_amount_out: int, market: Market, now: datetime) -> Settlement: ...


class MarketOutbox(Protocol):
    """Publishes market events (a swap's impact on its pools); returns once they are acked."""

    async def market(self, events: Sequence[MarketEvent]) -> None: ...
