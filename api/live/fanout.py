"""One Kafka listener per API process, fanned out to bounded per-subscriber mailboxes.

Consumes `orders.events` with ONE aiokafka consumer (no group: every API process reads every
partition for itself, from the end of the topic at start-up). A record that some stream may
want (its order is watched, an all-orders stream is open, or its headers do not say) is
decoded once, its WebSocket message encoded once, remembered in the
recent-events cache and offered to the mailboxes of that order's streams and of the
all-orders streams. Any other record is only judged by the writer fence and kept raw in the
recent-events cache, by the order id and type its headers carry (`schemas.headers`): it is
decoded only if a stream of its order later asks for it (an OrderAccepted also when a later
event of its order needs its tokens or owner). Produces nothing else. While no stream is
open its fetches gather like a market view's (MARKET_VIEW_FETCH_*): the records then only
fill the cache, and nobody waits for them.

Nothing is shared between processes: each API instance has its own fan-out, so instances can
be added or removed freely. A subscriber whose mailbox is full is overflowed (its connection
closes it); the loop never waits for a subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from api.live.config import LiveConfig
from api.live.mailbox import Mailbox
from api.live.messages import OrderMessage, encode
from api.live.recent import RecentEvents
from infra.fetch_pacing import FetchPacing, WhileListened, pace_consumer
from domain.orders.events import OrderAccepted
from schemas import headers
from schemas.codec import Codec, CodecError
from schemas.writer_fence import Fence, Verdict

log = logging.getLogger(__name__)
_ACCEPTED: Final = OrderAccepted.__name__
_ACCEPTED_BYTES: Final = _ACCEPTED.encode()

Feed = Mailbox[OrderMessage]
Matcher = Callable[[OrderMessage], bool]


class FeedUnavailable(Exception):
    """The fan-out could not start reading in time (the broker is down, or no topic)."""


class TopicNotFound(Exception):
    """The events topic does not exist (yet)."""


@dataclass(slots=True)
class FanoutStats:
    """Counters for tests, the benchmark and later metrics."""

    records: int = 0
    deferred: int = 0  # events no subscriber wanted as they arrived: not decoded then
    undecodable: int = 0
    overflowed: int = 0


class Fanout:
    """The process's live feed of order events. Build with `Fanout.open(...)`."""

    def __init__(self, bootstrap_servers: str, topic: str, codec: Codec,
                 config: LiveConfig, pacing: FetchPacing,
                 unheard: FetchPacing | None = None) -> None:
        self._bootstrap_servers = bootstrap_servers
        # How its fetches wait (infra/fetch_pacing.py): `pacing` while a stream listens;
        # `unheard` while none does and the records only fill the recent-events cache.
        self._pacing = WhileListened(lambda: bool(self._by_order or self._all), pacing,
                                     unheard or pacing)
        self._topic = topic
        self._codec = codec
        self._config = config
        self._recent = RecentEvents(config.recent_orders, config.recent_per_order,
                                    self._message_of)
        self._by_order: dict[str, set[Feed]] = {}
        self._all: dict[Feed, Matcher] = {}
        self.start_offsets: dict[int, int] = {}  # partition -> first offset read live
        self._fences: dict[int, Fence] = {}  # partition -> the writer fence read so far
        self._ready = asyncio.Event()
        self._last_error: str | None = None
        self.stats = FanoutStats()

    @classmethod
    @asynccontextmanager
    async def open(cls, bootstrap_servers: str, topic: str, codec: Codec,
                   config: LiveConfig, pacing: FetchPacing,
                   unheard: FetchPacing | None = None) -> AsyncIterator[Fanout]:
        """Start reading `topic` from its end, in the background; stop on exit.

        The app does not wait for the broker here: a broker that is down at boot delays the
        streams (they wait for `ready`), not the whole process. On exit every subscription
        ends with `FeedStopped`.
        """
        fanout = cls(bootstrap_servers, topic, codec, config, pacing, unheard)
        task = asyncio.create_task(fanout._run(), name="live-fanout")
        try:
            yield fanout
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            fanout._stop_all()

    async def ready(self) -> None:
        """Wait until the feed reads live (its start offsets are known); raises on timeout."""
        try:
            async with asyncio.timeout(self._config.start_timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise FeedUnavailable(f"the live feed of {self._topic} is not reading yet: "
                                  f"{self._last_error or 'starting'}") from None

    # --- subscriptions -------------------------------------------------------------------

    @contextmanager
    def order_feed(self, order_id: str) -> Iterator[Feed]:
        """A mailbox of `order_id`'s live events, from now on, while the block runs."""
        feed = self._mailbox()
        self._by_order.setdefault(order_id, set()).add(feed)
        try:
            yield feed
        finally:
            feeds = self._by_order.get(order_id)
            if feeds is not None:
                feeds.discard(feed)
                if not feeds:
                    del self._by_order[order_id]

    @contextmanager
    def all_feed(self, matches: Matcher) -> Iterator[Feed]:
        """A mailbox of every order's live events that `matches`, while the block runs."""
        feed = self._mailbox()
        self._all[feed] = matches
        try:
            yield feed
        finally:
            self._all.pop(feed, None)

    def recent(self, order_id: str) -> list[OrderMessage]:
        """The last few live messages of `order_id` this process has seen (maybe none)."""
        return self._recent.messages_of(order_id)

    def is_live(self, partition: int, offset: int) -> bool:
        """Was the record at (partition, offset) produced after this feed started?

        If so, every later event of the same order reaches the feed too (one writer per
        order, one partition per order), and a stream needs the read model no more. A
        partition added after the start has no start offset: its records count as not live,
        which only costs a stream some read-model polls.
        """
        start = self.start_offsets.get(partition)
        return start is not None and offset >= start

    @property
    def subscribers(self) -> int:
        return sum(len(feeds) for feeds in self._by_order.values()) + len(self._all)

    # --- the loop ----------------------------------------------------------------------

    def _mailbox(self) -> Feed:
        feed: Feed = Mailbox(self._config.subscriber_queue)
        return feed

    async def _run(self) -> None:
        """Start the consumer (retrying while the broker is unreachable), then pump."""
        delay = 0.5
        while True:
            # Subscribed without a group: the consumer assigns itself every partition (and
            # any partition added later) as soon as it has the topic's metadata.
            consumer = AIOKafkaConsumer(
                self._topic, bootstrap_servers=self._bootstrap_servers, group_id=None,
                enable_auto_commit=False, auto_offset_reset="latest",
                fetch_max_wait_ms=self._pacing.listened.idle_max_wait_ms)
            pace_consumer(consumer, self._pacing)
            try:
                await consumer.start()
                await self._start_at_end(consumer)
                self._ready.set()
                await self._pump(consumer)
            except (KafkaError, OSError, TopicNotFound) as error:
                self._last_error = str(error) or type(error).__name__
                log.warning("live fan-out cannot start: %s; retrying in %.1fs", error, delay)
            finally:
                await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _start_at_end(self, consumer: AIOKafkaConsumer) -> None:
        """Resolve every partition's end offset before serving anyone.

        Once this returns, every event produced later reaches the feed; an event produced
        earlier can only be found in the read model, and streams know which ones those are.
        """
        tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not tps:
            raise TopicNotFound(f"topic {self._topic} not found: is the engine provisioned?")
        await consumer.seek_to_end(*tps)
        for tp in tps:
            self.start_offsets[tp.partition] = await consumer.position(tp)

    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        # A batch is offered to every mailbox before any connection runs, so a batch must be
        # well below a mailbox's size, or a burst would overflow even the fastest client.
        batch = max(1, self._config.subscriber_queue // 4)
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=batch)
                for records in batches.values():
                    for record in records:
                        self._publish(record)
                # getmany need not suspend when records are prefetched: let the connections
                # send this batch before the next one is offered.
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception:  # the outermost loop: record it, keep the feed alive
                log.exception("live fan-out: reading %s failed; retrying", self._topic)
                await asyncio.sleep(1.0)

    def _publish(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.stats.records += 1
        # Claims and what a deposed writer appends after its successor's claim are not
        # events of the store (schemas.writer_fence); the fence learns the epoch as it goes.
        fence = self._fences.setdefault(record.partition, Fence())
        if fence.judge(record.offset, record.headers) is not Verdict.EVENT:
            return
        unwanted = self._unwanted(record)
        if unwanted is not None:  # kept raw: decoded only if a stream asks for it later
            order_id, accepted = unwanted
            self._recent.remember_raw(order_id, record, accepted=accepted)
            self.stats.deferred += 1
            return
        message = self._message_of(record)
        if message is None:
            return
        self._recent.remember(message, message.tokens if message.type == _ACCEPTED else
                              frozenset())
        for feed in self._by_order.get(message.order_id, ()):
            self._offer(feed, message)
        for feed, matches in self._all.items():
            if matches(message):
                self._offer(feed, message)

    def _offer(self, feed: Feed, message: OrderMessage) -> None:
        if feed.overflowed:
            return  # its connection is closing it
        feed.offer(message)
        if feed.overflowed:
            self.stats.overflowed += 1

    def _unwanted(self, record: ConsumerRecord[bytes, bytes]) -> tuple[str, bool] | None:
        """The record's order id, and whether it is the order's OrderAccepted, if its
        headers show that no subscriber wants it now; else None: decode it.

        Most live events concern orders nobody watches: decoding and encoding them anyway
        was most of the fan-out's CPU. A record without the headers is always decoded.
        """
        if self._all:
            return None
        order_id = type_name = None
        for name, value in record.headers or ():
            if name == headers.ORDER_ID:
                order_id = value
            elif name == headers.TYPE:
                type_name = value
        if order_id is None or type_name is None:
            return None
        decoded = order_id.decode(errors="replace")
        return None if decoded in self._by_order else (decoded, type_name == _ACCEPTED_BYTES)

    def _message_of(self, record: ConsumerRecord[bytes, bytes]) -> OrderMessage | None:
        """Decode and encode once; every subscriber shares the result."""
        try:
            envelope = self._codec.decode_envelope(record.value or b"")
        except CodecError as error:  # the order agent dead-letters; the edge only skips
            self.stats.undecodable += 1
            log.warning("live fan-out: skipping %s/%d@%d: %s", record.topic, record.partition,
                        record.offset, error)
            return None
        event, status = envelope.event, envelope.status  # the writer's status: no folding
        if isinstance(event, OrderAccepted):
            tokens, owner = _tokens(event), event.owner
        else:
            tokens = self._recent.tokens_of(event.order_id)
            owner = self._recent.owner_of(event.order_id)
        text = encode(event.order_id, status, type(event).__name__, event.seq,
                      event.occurred_at, self._codec.event_to_json(event))
        return OrderMessage(event.order_id, event.seq, type(event).__name__, status, text,
                            record.partition, record.offset, record.timestamp, tokens, owner)

    def _stop_all(self) -> None:
        for feeds in self._by_order.values():
            for feed in feeds:
                feed.stop()
        for feed in self._all:
            feed.stop()


def _tokens(event: OrderAccepted) -> frozenset[str]:
    terms = event.terms
    return frozenset({terms.token_in, terms.token_out,
                      terms.token_in_symbol.upper(), terms.token_out_symbol.upper()})
