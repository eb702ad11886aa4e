"""Adaptive long-poll for aiokafka consumers: short waits while busy, long waits while idle.

A fetch that finds no record is parked at the broker for `fetch_max_wait_ms`, and answered
as soon as a record lands on a partition in it. So the wait sets how often an idle consumer
asks (each fetch costs the broker and the client a request for every assigned partition:
aiokafka has no fetch sessions), and a long one would seem free. It is not while busy:
aiokafka leaves a partition whose records are still buffered out of the next fetch, keeps
one fetch in flight per broker, and records landing on the left-out partition wait until
that fetch returns, which is the whole wait when its own partitions stay quiet.

`FetchPacing` decides each fetch from the one before (pure). While the consumer is busy (the
last fetch brought records, or records fetched earlier still wait to be consumed) the next
fetch asks for `busy_min_bytes` within `busy_max_wait_ms`; once idle, for a single byte
within `idle_max_wait_ms`. A batch consumer (the projector) gathers while busy with a large
`busy_min_bytes`; the latency consumers keep 1 byte and a short wait. aiokafka's fetcher
reads both fields each time it builds a request, so `pace` sets them after every response.

Measured, not assumed: a large `busy_min_bytes` with a few ms of wait for the latency
consumers cost more than it saved (the broker re-checks a parked fetch on every append),
see docs/DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer

from oee.settings import Settings


@dataclass(frozen=True)
class FetchPacing:
    busy_min_bytes: int
    busy_max_wait_ms: int
    idle_max_wait_ms: int

    @classmethod
    def of(cls, settings: Settings) -> FetchPacing:
        """The pacing of the consumers that follow live records (FETCH_* settings)."""
        return cls(settings.fetch_busy_min_bytes, settings.fetch_busy_max_wait_ms,
                   settings.fetch_idle_max_wait_ms)

    @classmethod
    def market_view(cls, settings: Settings) -> FetchPacing:
        """The pacing of a market follower that serves a view, not decisions (the API's,
        the feed's): it gathers while market records flow (MARKET_VIEW_FETCH_* settings)."""
        return cls(settings.market_view_fetch_min_bytes, settings.market_view_fetch_max_wait_ms,
                   settings.fetch_idle_max_wait_ms)

    @property
    def adaptive(self) -> bool:
        """False when busy and idle fetches would be alike."""
        return (max(self.busy_min_bytes, 1), self.busy_max_wait_ms) != (1, self.idle_max_wait_ms)

    def next_fetch(self, busy: bool) -> tuple[int, int]:
        """(fetch_min_bytes, fetch_max_wait_ms) of the next fetch of a busy or idle consumer."""
        if busy:
            return max(self.busy_min_bytes, 1), self.busy_max_wait_ms
        return 1, self.idle_max_wait_ms


class Pacer(Protocol):
    @property
    def adaptive(self) -> bool: ...

    def next_fetch(self, busy: bool) -> tuple[int, int]: ...


@dataclass(frozen=True)
class WhileListened:
    """The pacing of a consumer whose records wait for a listener (the API's fan-out):
    `listened` while `listening()` holds, else `unheard` (which may gather: nobody waits).
    A first listener's records may come one gathering wait late, once."""

    listening: Callable[[], bool]
    listened: FetchPacing
    unheard: FetchPacing

    @property
    def adaptive(self) -> bool:
        return self.listened.adaptive or self.unheard.adaptive or self.listened != self.unheard

    def next_fetch(self, busy: bool) -> tuple[int, int]:
        return (self.listened if self.listening() else self.unheard).next_fetch(busy)


def pace(fetcher: Any, pacing: Pacer) -> None:
    """Make an aiokafka `Fetcher` choose each fetch's min bytes and wait by `pacing`.

    Wraps the fetcher's per-request coroutine on the instance (the fetch loop looks it up on
    each request). Its result says whether the response brought records (or an error to hand
    over); `_records` holds what was fetched and not yet consumed.
    """
    proc: Callable[..., Awaitable[bool]] = fetcher._proc_fetch_request

    async def paced(assignment: Any, node_id: int, request: Any) -> bool:
        brought = await proc(assignment, node_id, request)
        busy = brought or bool(fetcher._records)
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = pacing.next_fetch(busy)
        return brought

    fetcher._proc_fetch_request = paced


def pace_consumer(consumer: AIOKafkaConsumer, pacing: Pacer) -> None:
    """Pace `consumer`'s fetches once it has started (its fetcher is built by `start`)."""
    if not pacing.adaptive:
        return
    start = consumer.start

    async def started() -> None:
        await start()
        pace(consumer._fetcher, pacing)

    consumer.start = started
