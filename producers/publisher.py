"""Publishing market events: each to its topic, keyed by its pair, acknowledged by Kafka.

Consumes `MarketEvent`s; produces Avro records (schemas/market_event.avsc) on
`market.prices` (PoolSnapshot, PriceTick) and `market.pools` (PoolCreated, LiquidityChanged)
through one idempotent aiokafka producer (acks=all), opened with `async with` and passed
down. The pair key keeps every record about one pair, on every venue, in order.
`publish(settings, events)` is the one-call form for tests and tools.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from domain.market_events import MarketEvent
from infra.schema_registry import registered_codec
from infra.services import bootstrap_servers
from marketdata.topics import topic_of
from oee.settings import Settings, Topics
from schemas import headers as record_headers
from schemas.codec import Codec

__all__ = ["MarketPublisher", "publish", "topic_of"]

log = logging.getLogger(__name__)

# A step's snapshots leave together: a few ms of linger batches them into one request.
SOURCE: Final = "/oee/feed"  # the records' ce_source
LINGER_MS: Final = 5
_STOP_TIMEOUT_S: Final = 5.0


class MarketPublisher:
    """One idempotent producer for both market topics; `send` returns once all are acked."""

    def __init__(self, bootstrap: str, topics: Topics, codec: Codec,
                 client_id: str = "oee-feed") -> None:
        self._bootstrap, self._topics, self._codec = bootstrap, topics, codec
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    @classmethod
    def of(cls, settings: Settings, codec: Codec | None = None) -> MarketPublisher:
        return cls(bootstrap_servers(settings), settings.topics,
                   codec or registered_codec(settings))

    async def __aenter__(self) -> MarketPublisher:
        self._producer = await self._started()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer)

    async def send(self, events: Iterable[MarketEvent]) -> list[RecordMetadata]:
        """Produce `events` in order (per pair, the broker keeps it); await every ack."""
        producer = self._current()
        deliveries = [
            await producer.send(topic_of(event, self._topics),
                                self._codec.encode_market_event(event), key=event.pair.key,
                                headers=record_headers.build(event, SOURCE))
            for event in events
        ]
        return list(await asyncio.gather(*deliveries))

    async def renew(self) -> None:
        """Replace the producer: an idempotent aiokafka producer can stay wedged after a
        broker blip (OutOfOrderSequenceNumber, aiokafka#1017); a new one gets a new id."""
        old, self._producer = self._producer, await self._started()
        if old is not None:
            await _stop(old)

    def _current(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the publisher is not open: use `async with MarketPublisher(...)`")
        return self._producer

    async def _started(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, client_id=self._client_id,
                                    acks="all", enable_idempotence=True, linger_ms=LINGER_MS)
        await producer.start()
        return producer


async def publish(settings: Settings, events: Iterable[MarketEvent]) -> list[RecordMetadata]:
    """Publish `events` with a producer of their own; return once Kafka holds all of them."""
    async with MarketPublisher.of(settings) as publisher:
        return await publisher.send(events)


async def _stop(producer: AIOKafkaProducer) -> None:
    """Stop `producer`, bounded: an idempotent producer's flush waits for a broker forever."""
    try:
        await asyncio.wait_for(producer.stop(), _STOP_TIMEOUT_S)
    except (TimeoutError, KafkaError) as exc:
        log.warning("the market producer did not stop cleanly: %r", exc)
