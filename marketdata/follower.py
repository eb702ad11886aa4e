"""The market as `market.prices` and `market.pools` say it is, kept in a `MarketView`.

Consumes both market topics with a plain aiokafka consumer and no consumer group: every
process (each stream worker, each API instance) needs every record, and nothing is
committed. A starting process replays the last `market_catch_up_records` records of every
partition, then follows the live ones. That rebuilds the market because snapshots and pool
events carry whole pools, the random feed snapshots every pool each interval, and a quiet
pair's last tick or listing is still among the last records of its partition (a time-based
start, say two intervals back, would miss a script's tick from a minute ago).

Produces `view.replace(...)`, once per fetched batch, and for every subscriber one
`MarketChange` per pair the batch changed (the conditional-order trigger stage subscribes:
a tick then evaluates only the waiting orders of its pair). Market data is not the event
store: an undecodable record, or an event the market cannot absorb, is logged and skipped.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from domain.market_events import MarketChange, MarketEvent, fold
from infra.fetch_pacing import FetchPacing, pace_consumer
from infra.schema_registry import reading_codec
from infra.services import bootstrap_servers
from oee.settings import Settings
from schemas.codec import Codec, CodecError
from marketdata.view import MarketView

log = logging.getLogger(__name__)

MarketListener = Callable[[MarketChange], None]
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

_BATCH_RECORDS: Final = 10_000


class MarketTopicsMissing(Exception):
    """The broker does not know a market topic: create them with `oee topics create`."""


@dataclass(slots=True)
class FollowerStats:
    applied: int = 0
    rejected: int = 0  # decoded, but the market could not absorb it (no such pool, ...)
    undecodable: int = 0


class MarketFollower:
    """Follows the market topics into `view`; `async with` runs it in a task of its own,
    `run()` runs it in the caller's (a Faust app task)."""

    def __init__(self, settings: Settings, view: MarketView, codec: Codec | None = None,
                 *, client_id: str = "oee-market", pacing: FetchPacing | None = None) -> None:
        self._bootstrap = bootstrap_servers(settings)
        self._pacing = pacing or FetchPacing.of(settings)
        self._topics = (settings.topics.prices, settings.topics.pools)
        self._catch_up_records = settings.market_catch_up_records
        self._view = view
        self._codec = codec or reading_codec(settings)
        self._client_id = client_id
        self._listeners: list[MarketListener] = []
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = FollowerStats()

    @property
    def view(self) -> MarketView:
        return self._view

    @property
    def caught_up(self) -> bool:
        """Whether every record that existed when the follower started has been applied."""
        return self._caught_up.is_set()

    async def wait_caught_up(self) -> None:
        await self._caught_up.wait()

    def subscribe(self, listener: MarketListener) -> Callable[[], None]:
        """Call `listener` after each batch, once per changed pair; returns the unsubscribe.

        Listeners run inside the consume loop: they must be quick (hand work to a queue).
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def run(self) -> None:
        """Catch up, then follow until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self._pacing.idle_max_wait_ms,
        )
        pace_consumer(consumer, self._pacing)
        await consumer.start()
        try:
            pending = await self._start_recent(consumer)
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=_BATCH_RECORDS)
                self.apply(_in_time_order(batch.values()))
                if pending:
                    pending = {tp: end for tp, end in pending.items()
                               if await consumer.position(tp) < end}
                    if not pending:
                        self._caught_up.set()
        finally:
            await consumer.stop()

    def apply(self, records: Iterable[Record]) -> None:
        """Decode and fold one batch into the view, then tell the listeners what changed."""
        events = list(self._decoded(records))
        if not events:
            return
        folded = fold(self._view.current(), events)
        for rejected in folded.rejected:
            log.warning("market event %s (%s) skipped: %s", rejected.event.event_id,
                        type(rejected.event).__name__, rejected.reason)
        self.stats.rejected += len(folded.rejected)
        self.stats.applied += len(events) - len(folded.rejected)
        if not folded.changes:
            return
        self._view.replace(folded.market)
        for change in folded.changes:
            for listener in tuple(self._listeners):
                try:
                    listener(change)
                except Exception:  # one subscriber's bug must not freeze every stage's market
                    log.exception("market listener %r failed on %s", listener, change.pair)

    async def __aenter__(self) -> MarketFollower:
        """Start following; return once caught up (or raise why the follower stopped)."""
        self._task = asyncio.create_task(self.run(), name="market-follower")
        self._task.add_done_callback(_report_stopped)
        caught_up = asyncio.create_task(self._caught_up.wait())
        await asyncio.wait({self._task, caught_up}, return_when=asyncio.FIRST_COMPLETED)
        if not caught_up.done():
            caught_up.cancel()
            await self._stopped()
            self._task.result()  # the follower's error
            raise RuntimeError("the market follower stopped before catching up")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stopped()

    async def _stopped(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _start_recent(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Assign every partition at `end - catch_up_records`; return the ends to reach."""
        partitions = await self._partitions()
        ends = await consumer.end_offsets(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        consumer.assign(partitions)  # and sought at once (streams.event_store says why)
        for tp in partitions:
            consumer.seek(tp, max(firsts[tp], ends[tp] - self._catch_up_records))
        pending = {tp: end for tp, end in ends.items() if end > firsts[tp]}
        if not pending:
            self._caught_up.set()
        return pending

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of both topics, fresh from the cluster.

        Asked of an admin client: a consumer without a group only knows the metadata of
        topics it has already fetched (`partitions_for_topic` is None before that).
        """
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap,
                                    client_id=f"{self._client_id}-admin")
        await admin.start()
        try:
            described = await admin.describe_topics(list(self._topics))
        finally:
            await admin.close()
        found = {
            topic["topic"]: sorted(p["partition"] for p in topic.get("partitions", []))
            for topic in described if topic.get("error_code") == 0 and topic.get("partitions")
        }
        missing = [topic for topic in self._topics if topic not in found]
        if missing:
            raise MarketTopicsMissing(f"no topic {missing} on {self._bootstrap}: "
                                      "create the topics with `oee topics create`")
        return [TopicPartition(topic, p) for topic in self._topics for p in found[topic]]

    def _decoded(self, records: Iterable[Record]) -> Iterator[MarketEvent]:
        for record in records:
            try:
                yield self._codec.decode_market_event(record.value or b"")
            except CodecError as error:
                self.stats.undecodable += 1
                log.warning("undecodable market record %s[%d]@%d skipped: %s",
                            record.topic, record.partition, record.offset, error)


def _in_time_order(batches: Iterable[list[Record]]) -> Iterator[Record]:
    """Every partition's records in their own order, interleaved by timestamp.

    A pool listed on `market.pools` and then ticked on `market.prices` crosses topics,
    where Kafka promises no order; the producer's timestamps are the best order there is.
    heapq.merge only ever takes the head of a partition's list, so within a partition
    the order stays the log's even where timestamps go backwards.
    """
    return heapq.merge(*batches, key=lambda record: record.timestamp)


def _report_stopped(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the market follower stopped; this process's market is frozen",
                  exc_info=task.exception())
