"""Everything the stream workers produce, through Faust's producer.

Using Faust's own producer matters: before Faust commits a consumed offset it flushes this
producer, so the events a command caused are durable before the command counts as done.
Sends do not wait for the broker's acknowledgement one by one; the commit-time flush does.
"""

from __future__ import annotations

import logging
from typing import Protocol

from domain.orders.commands import Command
from domain.work import ExecuteSwap, QuoteRoute, Work
from oee.settings import Topics
from schemas.codec import Codec

log = logging.getLogger(__name__)


class Producer(Protocol):
    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> object: ...


class Outbox:
    def __init__(self, producer: Producer, topics: Topics, codec: Codec) -> None:
        self._producer = producer
        self._topics = topics
        self._codec = codec

    async def event(self, partition: int, order_id: str, value: bytes) -> None:
        # Same partition number as the command: the event store stays co-partitioned with
        # the commands by construction, whatever partitioner a client uses.
        await self._producer.send(self._topics.events, order_id.encode(), value, partition,
                                  None, None)

    async def command(self, command: Command) -> None:
        await self._producer.send(self._topics.commands, command.order_id.encode(),
                                  self._codec.encode_command(command), None, None, None)

    async def work(self, work: Work) -> None:
        topic = self._topics.routing if isinstance(work, QuoteRoute) else self._topics.execution
        assert isinstance(work, QuoteRoute | ExecuteSwap)
        await self._producer.send(topic, work.order_id.encode(), self._codec.encode_work(work),
                                  None, None, None)

    async def dead_letter(self, source: str, partition: int, offset: int, key: bytes | None,
                          value: bytes | None, error: BaseException) -> None:
        """Park a record nobody can process, with why, instead of crash-looping on it."""
        log.error("dead-lettering %s[%d]@%d: %r", source, partition, offset, error)
        headers = [
            ("source-topic", source.encode()),
            ("source-partition", str(partition).encode()),
            ("source-offset", str(offset).encode()),
            ("error-type", type(error).__name__.encode()),
            ("error", str(error)[:2000].encode()),
        ]
        await self._producer.send(self._topics.dead_letters, key, value, None, None, headers)
