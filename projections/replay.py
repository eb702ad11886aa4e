"""Replay for audits: events straight from Kafka, in order, with their coordinates, checked.

Consumes `orders.events` (never PostgreSQL: the audit must not depend on the projection it
audits) for one order, a time range or everything; produces each event with its topic,
partition, offset and record time, and the `SeqAudit` findings: a gap, an event out of
order, two events with one seq or an event after the end makes the replay fail.

- `--order ID` reads only the partition the order id hashes to (aiokafka's default murmur2
  partitioner of the key, which the edge uses and the event store follows), and falls back
  to every partition if the order is not there (a producer with another partitioner).
- `--from T [--to T]` starts each partition at `offsets_for_times(T)` and stops at the
  offset for `--to` (or the end seen at start); records outside [from, to) are left out.
- `--all` reads every partition from 0 to the end seen at start.
Events come partition by partition, in offset order: one order's events share a partition,
so each order reads in seq order. With a `ChainCheck` (`oee replay --verify`) every event's
link in its order's hash chain is recomputed from the record's bytes (after the writer fence,
as every reader). `on_read(read, to_read)` is told after each fetched batch
how many records of the selected offset ranges are behind it (read or skipped) and how many
there are (the CLI's progress bar).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from domain.orders.events import Event
from projections.audit import Coordinates, SeqAudit
from projections.kafka_offsets import KafkaOffsets
from schemas.chain import ChainCheck, RangedHeads
from schemas.checkpoints import BadCheckpoint, Checkpoint
from schemas.codec import Codec, CodecError
from schemas.writer_fence import Fence, Verdict

FETCH_BYTES = 16 * 1024 * 1024
OnRead = Callable[[int, int], None]  # (records behind, records in the selected ranges)


@dataclass(frozen=True, slots=True)
class Selection:
    """What to replay: one order, a time range [start, end) or everything."""

    order_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def from_start(self) -> bool:
        """Does the selection hold whole histories (so the first seq must be 1)?"""
        return self.start is None


@dataclass(frozen=True, slots=True)
class Replayed:
    at: Coordinates
    timestamp_ms: int
    event: Event


@dataclass(slots=True)
class CheckpointCheck:
    """The writer's checkpoints (`orders.checkpoints`) compared with the recomputed heads.
    `read`: a record's value -> its checkpoint, any committed version
    (`infra.schema_registry.registered_checkpoint_reader`)."""

    read: Callable[[bytes | None], Checkpoint] | None = None
    pending: dict[int, list[tuple[int, Checkpoint]]] = field(default_factory=dict)
    checked: int = 0
    stale: int = 0  # written by a deposed writer (its epoch is older than the fence's)
    unchecked: int = 0  # covering offsets the replay did not read
    unreadable: int = 0
    mismatched: list[dict[str, object]] = field(default_factory=list)

    def due(self, partition: int, offset: int) -> list[tuple[int, Checkpoint]]:
        """The checkpoints of `partition` covering up to `offset`, taken off the list."""
        waiting = self.pending.get(partition, [])
        ready = [item for item in waiting if item[1].covered_offset <= offset]
        self.pending[partition] = waiting[len(ready):]
        return ready

    def compare(self, at: int, checkpoint: Checkpoint, heads: RangedHeads,
                epoch: int, checkpoints_topic: str) -> None:
        """`heads`: the partition's, recomputed up to the checkpoint's offset (the root of
        the ranges changed since the last checkpoint is all that is computed again)."""
        if checkpoint.epoch < epoch:
            self.stale += 1
            return
        self.checked += 1
        recomputed, orders = heads.root(checkpoint.ranges)
        if recomputed != checkpoint.root:
            self.mismatched.append({
                "topic": checkpoints_topic, "partition": checkpoint.partition, "offset": at,
                "coveredOffset": checkpoint.covered_offset, "root": checkpoint.root.hex(),
                "recomputed": recomputed.hex(), "orders": checkpoint.orders,
                "recomputedOrders": orders})


@dataclass(frozen=True, slots=True)
class _Range:
    partition: int
    first: int  # offset of the first record to read
    stop: int  # offset after the last record to read


class Replayer:
    """Reads a selection from one cluster; `audit` collects the findings as it goes."""

    def __init__(self, bootstrap_servers: str, topic: str, codec: Codec,
                 on_read: OnRead | None = None) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._codec = codec
        self._on_read = on_read
        self._read_before = 0  # records of the ranges already finished
        self._to_read = 0
        self._chain: ChainCheck | None = None
        self._checkpoints: tuple[str, CheckpointCheck] | None = None

    async def replay(self, selection: Selection, audit: SeqAudit,
                     chain: ChainCheck | None = None,
                     checkpoints: tuple[str, CheckpointCheck] | None = None,
                     ) -> AsyncIterator[Replayed]:
        """The selected events, checked by `audit` and, given a `chain`, each order's hash
        chain too (recomputed from the records' bytes: `schemas.chain`); given the
        checkpoints topic and a `CheckpointCheck` (whole partitions only: `--all`), every
        checkpoint's root against the heads recomputed at its covered offset."""
        self._chain = chain
        self._checkpoints = checkpoints
        async with KafkaOffsets(self._bootstrap) as kafka:
            partitions = await kafka.partitions(self._topic)
            ends = await kafka.end_offsets(self._topic, partitions)
            ranges = await self._ranges(kafka, selection, partitions, ends)
            if checkpoints is not None:
                await self._load_checkpoints(kafka, *checkpoints)
        if selection.order_id is None:
            async for replayed in self._read(ranges, selection, audit):
                yield replayed
            return
        home = _partition_of(selection.order_id, partitions)
        found = False
        async for replayed in self._read([r for r in ranges if r.partition == home],
                                         selection, audit):
            found = True
            yield replayed
        if not found:  # not where the default partitioner puts it: look everywhere
            async for replayed in self._read([r for r in ranges if r.partition != home],
                                             selection, audit):
                yield replayed

    async def _ranges(
        self, kafka: KafkaOffsets, selection: Selection, partitions: list[int],
        ends: dict[int, int],
    ) -> list[_Range]:
        starts = dict.fromkeys(partitions, 0)
        stops = dict(ends)
        if selection.start is not None:
            found = await kafka.offsets_for_time(self._topic, partitions, _ms(selection.start))
            starts = {p: ends[p] if offset is None else offset for p, offset in found.items()}
        if selection.end is not None:
            found = await kafka.offsets_for_time(self._topic, partitions, _ms(selection.end))
            stops = {p: ends[p] if offset is None else offset for p, offset in found.items()}
        return [_Range(p, starts[p], stops[p]) for p in partitions if starts[p] < stops[p]]

    async def _read(
        self, ranges: Iterable[_Range], selection: Selection, audit: SeqAudit
    ) -> AsyncIterator[Replayed]:
        ranges = list(ranges)
        self._to_read += sum(r.stop - r.first for r in ranges)
        self._report(0)
        if not ranges:
            return  # (and aiokafka 0.14 raises CancelledError on a start quickly followed by stop)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
            fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=FETCH_BYTES,
        )
        await consumer.start()
        try:
            for selected in ranges:
                async for replayed in self._read_range(consumer, selected, selection, audit):
                    yield replayed
                self._read_before += selected.stop - selected.first
                self._report(0)
        finally:
            await consumer.stop()

    async def _read_range(
        self, consumer: AIOKafkaConsumer, selected: _Range, selection: Selection,
        audit: SeqAudit,
    ) -> AsyncIterator[Replayed]:
        tp = TopicPartition(self._topic, selected.partition)
        consumer.assign([tp])
        consumer.seek(tp, selected.first)
        key = selection.order_id.encode() if selection.order_id is not None else None
        low = _ms(selection.start) if selection.start is not None else None
        high = _ms(selection.end) if selection.end is not None else None
        fence = Fence()  # from mid-log it learns the epoch from the first event it reads
        heads = RangedHeads()  # of this partition's orders (for the checkpoints' roots)
        while await consumer.position(tp) < selected.stop:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            fetched = batches.get(tp, [])
            if fetched:
                self._report(min(fetched[-1].offset + 1, selected.stop) - selected.first)
            for record in fetched:
                if record.offset >= selected.stop:
                    break
                if self._checkpoints is not None and record.offset > 0:
                    self._check_checkpoints(selected.partition, record.offset - 1, fence,
                                            heads)
                # Every record goes past the fence (claims have no key): a claim, or an
                # event a deposed writer appended after it, is not part of the history.
                if fence.judge(record.offset, record.headers) is not Verdict.EVENT:
                    continue
                if key is not None and record.key != key:
                    continue
                if (low is not None and record.timestamp < low) or (
                        high is not None and record.timestamp >= high):
                    continue
                at = Coordinates(self._topic, record.partition, record.offset)
                try:
                    event = self._codec.decode_event(record.value or b"")
                except CodecError as error:
                    audit.undecodable(at, str(error))
                    continue
                if selection.order_id is not None and event.order_id != selection.order_id:
                    continue
                audit.add(event, at)
                if self._chain is not None:
                    self._check_link(event, record.value or b"", at, audit, heads)
                yield Replayed(at, record.timestamp, event)
        if self._checkpoints is not None:
            self._check_checkpoints(selected.partition, selected.stop - 1, fence, heads)
            self._checkpoints[1].unchecked += len(self._checkpoints[1].pending.pop(
                selected.partition, []))


    def _check_checkpoints(self, partition: int, offset: int, fence: Fence,
                           heads: RangedHeads) -> None:
        """Compare the checkpoints covering up to `offset` (everything up to it is read)."""
        assert self._checkpoints is not None and self._chain is not None
        topic, check = self._checkpoints
        for at, checkpoint in check.due(partition, offset):
            check.compare(at, checkpoint, heads, fence.epoch, topic)

    async def _load_checkpoints(self, kafka: KafkaOffsets, topic: str,
                                check: CheckpointCheck) -> None:
        """Every checkpoint of `topic` of this events topic, by events partition and covered
        offset (none if the topic does not exist)."""
        partitions = await kafka.partitions(topic)
        if not partitions:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            ends = await consumer.end_offsets(tps)
            firsts = await consumer.beginning_offsets(tps)
            consumer.assign(tps)  # and sought at once (streams.event_store says why)
            for tp in tps:
                consumer.seek(tp, firsts[tp])
                while await consumer.position(tp) < ends[tp]:
                    for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                        self._keep_checkpoint(check, record.offset, record.value)
        finally:
            await consumer.stop()
        for waiting in check.pending.values():
            waiting.sort(key=lambda item: item[1].covered_offset)

    def _keep_checkpoint(self, check: CheckpointCheck, offset: int,
                         value: bytes | None) -> None:
        if check.read is None:
            raise ValueError("a CheckpointCheck that reads records needs `read`")
        try:
            checkpoint = check.read(value)
        except BadCheckpoint:
            check.unreadable += 1
            return
        # (its events topic is not compared: an auditor's copy of the log has another name)
        check.pending.setdefault(checkpoint.partition, []).append((offset, checkpoint))

    def _check_link(self, event: Event, value: bytes, at: Coordinates, audit: SeqAudit,
                    heads: RangedHeads) -> None:
        assert self._chain is not None
        try:
            link = self._codec.chain_link(value)
        except CodecError as error:  # decoded a moment ago: only a schema it cannot reach
            audit.undecodable(at, str(error))
            return
        self._chain.add(event.order_id, event.seq, link, at.topic, at.partition, at.offset)
        head = self._chain.head_of(event.order_id)
        if head is None:
            heads.drop(event.order_id)  # broken (or not chained yet): not in a root
        else:
            heads.set(event.order_id, head)

    def _report(self, read_in_range: int) -> None:
        if self._on_read is not None:
            self._on_read(self._read_before + read_in_range, self._to_read)


def _partition_of(order_id: str, partitions: list[int]) -> int:
    """Where aiokafka's default partitioner puts records keyed by `order_id`."""
    ordered = sorted(partitions)
    return int(DefaultPartitioner()(order_id.encode(), ordered, ordered))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
