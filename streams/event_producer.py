"""The worker's producer: idempotent, renewed after a failure.

Consumes every record `KafkaOutbox` sends (events and claim records to the event store, work
items, reports, timer commands, market impacts, checkpoints, dead letters); produces them
through one aiokafka producer with `enable_idempotence` and acks=all. One producer for all of
them, because each producer sends its own requests: with the event store on this one and the
rest on Faust's, whatever the two had pending at a moment went to the broker as two requests.

Why not Faust's producer: Faust turns idempotence on only inside transactions, so a batch the
broker appended but never acknowledged (a broker crash between the append and the answer) was
sent again and landed twice — an order's events repeated in its log (fault scenario e).

Why renewed: after the broker refuses a batch for good (e.g. `max.message.bytes`), aiokafka's
idempotent producer has already counted that batch's sequence numbers, so every later batch of
the partition is answered OutOfOrderSequenceNumber and the producer never recovers
(docs/pitfalls.md 7). So the first failed delivery of a generation retires that producer: the
next send starts a fresh one (a new producer id, sequences from zero), and the old one is
stopped in the background. Whatever the old one still held is flushed, or failed if it cannot
be within `stop_timeout_s`: a delivery future is never left pending, because the writer acks a
command only once its deliveries settle and folds a partition again only after they have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 10.0


class Client(Protocol):
    """The part of `AIOKafkaProducer` used here (a seam for the unit tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]: ...


Factory = Callable[[], Client]


def idempotent(bootstrap_servers: str, client_id: str, linger_ms: int) -> Factory:
    def make() -> Client:
        client: Client = AIOKafkaProducer(bootstrap_servers=bootstrap_servers,
                                          client_id=client_id, acks="all",
                                          enable_idempotence=True, linger_ms=linger_ms)
        return client
    return make


class RenewingProducer:
    """`send` has the shape of Faust's producer (`streams.outbox.Producer`)."""

    def __init__(self, make: Factory, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._make = make
        self._stop_timeout_s = stop_timeout_s
        self._client: Client | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.renewals = 0

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> asyncio.Future[Any]:
        client, generation = await self._current()
        delivery = await client.send(
            topic, value=value, key=key, partition=partition, headers=headers,
            timestamp_ms=None if timestamp is None else int(timestamp * 1000))
        delivery.add_done_callback(lambda done: self._settled(done, generation))
        return delivery

    async def stop(self) -> None:
        """Flush and close the current producer, and wait for the retired ones."""
        async with self._lock:
            self._stopped = True
            client, self._client = self._client, None
        if client is not None:
            await self._stop(client)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _current(self) -> tuple[Client, int]:
        async with self._lock:  # one start at a time; concurrent senders wait for it
            if self._stopped:
                raise KafkaError("the worker is stopping: its producer takes nothing more")
            if self._client is None:
                client = self._make()
                await client.start()
                self._client = client
            return self._client, self._generation

    def _settled(self, done: asyncio.Future[Any], generation: int) -> None:
        if done.cancelled() or done.exception() is None or generation != self._generation:
            return
        log.warning("a delivery failed (%r): renewing the worker's producer", done.exception())
        self._generation += 1
        self.renewals += 1
        retired, self._client = self._client, None
        if retired is not None:
            task = asyncio.ensure_future(self._stop(retired))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _stop(self, client: Client) -> None:
        try:
            await asyncio.wait_for(client.stop(), self._stop_timeout_s)
        except (TimeoutError, KafkaError) as exc:
            log.warning("a retired event producer did not stop cleanly: %r", exc)
        _fail_pending(client)


def _fail_pending(client: Client) -> None:
    """Fail what a stopped producer never delivered, so no delivery future stays pending.
    aiokafka has no public call for it; its accumulator's `fail_all` is what it uses itself
    when the producer dies."""
    accumulator = getattr(client, "_message_accumulator", None)
    if accumulator is not None:
        accumulator.fail_all(KafkaError("the producer was retired before this was delivered"))
