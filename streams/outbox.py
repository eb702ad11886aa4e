"""The Kafka adapter of the `Outbox` port: encodes and produces through one producer.

Consumes domain values (events, commands, work items, dead letters) and produces their Avro
records. Every call returns once the record is enqueued, with the broker's future for it (a
`Delivery`): the callers decide what to await. The worker hands in its idempotent producer
(`streams.event_producer`: a retried batch must never land twice in an order's log), and
everything goes through it, so what is pending at a moment travels in one request.
Each event is chained to its order's head hash (`schemas.chain`, order_event v5): the writer
keeps the heads beside its states and hands them in; encoding, and so hashing, happens here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from domain.market_events import MarketEvent
from domain.orders.commands import Command
from domain.orders.events import Event
from domain.orders.status import TERMINAL, OrderStatus
from domain.work import ExecuteSwap, QuoteRoute, Work
from marketdata.topics import topic_of
from oee.settings import Topics
from schemas import headers as record_headers
from schemas.chain import GENESIS
from schemas.codec import Codec
from schemas.writer_fence import claim_headers, epoch_headers
from streams.checkpoints import Checkpoints
from streams.ports import Delivery

log = logging.getLogger(__name__)

SOURCE = "/oee/worker"  # the records' ce_source


class Producer(Protocol):
    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> Awaitable[Any]: ...


class KafkaOutbox:
    def __init__(self, producer: Producer, topics: Topics, codec: Codec,
                 checkpoints: Checkpoints | None = None) -> None:
        self._producer = producer
        self._topics = topics
        self._codec = codec
        self._checkpoints = checkpoints  # told each chained event's hash and delivery

    async def events(self, partition: int, events: Sequence[Event],
                     statuses: Sequence[OrderStatus], epoch: int | None = None,
                     heads: dict[str, bytes] | None = None) -> list[Delivery]:
        # Same partition number as the command: the event store stays co-partitioned with
        # the commands by construction, whatever partitioner a client uses. The epoch header
        # lets every reader drop what this writer appends once a successor has claimed.
        headers = None if epoch is None else epoch_headers(epoch)
        sent: list[Delivery] = []
        advanced: dict[str, bytes] = {}  # the heads once these events are in (schemas.chain)
        try:
            for event, status in zip(events, statuses, strict=True):
                sent.append(await self._send(
                    self._topics.events, event.order_id.encode(),
                    self._encode(event, status, heads, advanced), partition, headers,
                    subject=event))
                if self._checkpoints is not None and event.order_id in advanced:
                    self._checkpoints.track(partition, event.order_id,
                                            advanced[event.order_id], sent[-1],
                                            ended=status in TERMINAL)
        except Exception:
            # The caller folds the partition again: it must not read the store before the
            # part of the decision that was enqueued has landed (or failed).
            await asyncio.gather(*sent, return_exceptions=True)
            raise
        if heads is not None:
            heads.update(advanced)
        return sent

    def _encode(self, event: Event, status: OrderStatus, heads: dict[str, bytes] | None,
                advanced: dict[str, bytes]) -> bytes:
        """The event's record, chained to its order's head when the writer keeps heads."""
        if heads is None:
            return self._codec.encode_event(event, status=status)
        order_id = event.order_id
        prev = advanced.get(order_id) or heads.get(order_id) or GENESIS
        value, advanced[order_id] = self._codec.encode_chained_event(event, status=status,
                                                                     prev_hash=prev)
        return value

    async def checkpoint(self, partition: int, value: bytes) -> Delivery:
        """A chain checkpoint of `orders.events[partition]` (schemas.checkpoints), to the same
        partition number of `orders.checkpoints`."""
        return await self._send(self._topics.checkpoints, str(partition).encode(), value,
                                partition)

    async def claim(self, partition: int, claimant: str, value: bytes) -> int:
        """Append a claim record (`value`: schemas.claims) to `orders.events[partition]`;
        returns its offset once the broker has it (the writer's epoch on the partition,
        schemas.writer_fence)."""
        delivered = await self._send(self._topics.events, None, value, partition,
                                     claim_headers(claimant))
        return int((await delivered).offset)

    async def command(self, command: Command) -> Delivery:
        return await self._send(self._topics.commands, command.order_id.encode(),
                                self._codec.encode_command(command), subject=command)

    async def work(self, work: Work) -> Delivery:
        topic = self._topics.routing if isinstance(work, QuoteRoute) else self._topics.execution
        assert isinstance(work, QuoteRoute | ExecuteSwap)
        return await self._send(topic, work.order_id.encode(), self._codec.encode_work(work),
                                subject=work)

    async def market(self, events: Sequence[MarketEvent]) -> None:
        """Publish market events (a swap's impact), keyed by pair; return once all are acked."""
        deliveries = [await self._send(topic_of(event, self._topics), event.pair.key,
                                       self._codec.encode_market_event(event), subject=event)
                      for event in events]
        await asyncio.gather(*deliveries)

    async def dead_letter(self, source: str, partition: int, offset: int, key: bytes | None,
                          value: bytes | None, error: BaseException) -> Delivery:
        """Park a record nobody can process, with why, instead of crash-looping on it."""
        log.error("dead-lettering %s[%d]@%d: %r", source, partition, offset, error)
        headers = [
            ("source-topic", source.encode()),
            ("source-partition", str(partition).encode()),
            ("source-offset", str(offset).encode()),
            ("error-type", type(error).__name__.encode()),
            ("error", str(error)[:2000].encode()),
        ]
        return await self._send(self._topics.dead_letters, key, value, headers=headers)

    async def _send(self, topic: str, key: bytes | None, value: bytes | None,
                    partition: int | None = None,
                    headers: list[tuple[str, bytes]] | None = None,
                    subject: record_headers.Subject | None = None) -> Delivery:
        if subject is not None:  # what consumers route and trace by, without decoding
            headers = [*(headers or []), *record_headers.build(subject, SOURCE)]
        pending = await self._producer.send(topic, key, value, partition, None, headers)
        return asyncio.ensure_future(pending)
