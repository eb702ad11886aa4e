"""The writer fence (`schemas.writer_fence`): a deposed writer's late records never count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.orders.decide import ExecutionPolicy
from domain.orders.events import Event
from projections.batch import Snapshots, decode_batch, fold_batch
from schemas.writer_fence import (
    EPOCH_HEADER, Fence, Verdict, claim_headers, epoch_headers,
)
from streams.event_store import StoredRecord
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import OrderStates, PartitionStates, fold_partition
from tests.orders_support import WriterStatuses
from tests.unit.stream_fakes import FakeClock, FakeOutbox, FakeStates, execute_order
from tests.unit.test_partition_fold import CODEC, accepted

CLAIM = claim_headers("worker-b")


def test_a_claim_moves_the_epoch_and_older_writers_become_stale() -> None:
    fence = Fence()
    assert fence.judge(0, []) is Verdict.EVENT  # written before the fence
    assert fence.judge(1, CLAIM) is Verdict.CLAIM
    assert fence.judge(2, epoch_headers(1)) is Verdict.EVENT
    assert fence.judge(3, CLAIM) is Verdict.CLAIM
    assert fence.judge(4, epoch_headers(1)) is Verdict.STALE  # the deposed writer, late
    assert fence.judge(5, []) is Verdict.EVENT  # unfenced (a tool): the fold judges it
    assert fence.judge(6, [(EPOCH_HEADER, b"x")]) is Verdict.STALE
    assert fence.judge(7, epoch_headers(3)) is Verdict.EVENT
    assert fence.epoch == 3


def test_a_reader_resuming_past_the_claim_learns_the_epoch_from_the_events() -> None:
    fence = Fence()
    assert fence.judge(40, epoch_headers(30)) is Verdict.EVENT
    assert fence.judge(41, epoch_headers(12)) is Verdict.STALE
    resumed = Fence(epoch=30)
    assert resumed.judge(42, epoch_headers(12)) is Verdict.STALE


def test_the_fold_keeps_what_the_old_writer_wrote_before_the_claim_and_drops_the_rest(
) -> None:
    a1, a2 = accepted("a")
    statuses = WriterStatuses()

    def record(offset: int, event: Event, epoch: int) -> StoredRecord:
        value = CODEC.encode_event(event, status=statuses.after(event))
        return StoredRecord(offset, event.order_id.encode(), value,
                            tuple(epoch_headers(epoch)))

    records = [
        StoredRecord(0, None, None, tuple(claim_headers("worker-a"))),
        record(1, a1, 0),
        StoredRecord(2, None, None, tuple(CLAIM)),  # worker-b takes over
        record(3, a2, 0),  # worker-a wakes up and appends seq 2 on its stale fold
        record(4, a2, 2),  # worker-b's own seq 2
    ]

    folded = fold_partition("orders.events[0]", records, CODEC.decode_event)

    assert folded.states.orders["a"].seq == 2
    assert folded.states.stale == 1
    assert folded.problems == ()  # claims and stale records are not poison


async def test_the_writer_stamps_its_events_with_its_claim_on_the_partition() -> None:
    states = FakeStates()
    states.partitions[3] = PartitionStates(epoch=17)
    outbox = FakeOutbox()
    writer = OrderWriter(states, outbox, WriterConfig(ExecutionPolicy(), timedelta(seconds=15)),
                         FakeClock())

    decided = await writer.handle(3, execute_order("a"))

    assert len(decided.events) == 2 and outbox.epochs == [17, 17]


def consumer_record(offset: int, value: bytes, headers: list[tuple[str, bytes]],
                    partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("orders.events", partition, offset, 0, 0, None, value, None,
                          0, len(value), headers)


def test_the_projector_skips_claims_and_stale_records_and_carries_the_epoch_on() -> None:
    a1, a2 = accepted("a")
    statuses = WriterStatuses()
    v1, v2 = (CODEC.encode_event(e, status=statuses.after(e)) for e in (a1, a2))
    fences = {0: Fence(epoch=5)}  # as stored with the projection's offset
    first = {TopicPartition("orders.events", 0): [
        consumer_record(6, v1, epoch_headers(5)),
        consumer_record(7, b"worker-b", CLAIM),
        consumer_record(8, v2, epoch_headers(5)),  # the deposed writer, late
    ]}
    second = {TopicPartition("orders.events", 0): [consumer_record(9, v2, epoch_headers(7))]}

    batch = decode_batch(CODEC, "orders.events", first, fences)
    after = decode_batch(CODEC, "orders.events", second, fences)

    assert [(i.offset, i.event) for i in batch.items] == [(6, a1)]
    assert (batch.stale, batch.next_offsets, batch.epochs) == (1, {0: 9}, {0: 7})
    assert [(i.offset, i.event) for i in after.items] == [(9, a2)]
    assert fold_batch(CODEC, batch, Snapshots()).epochs == {0: 7}


class OneRecordStore:
    """The event store of one partition holding one claim: what `OrderStates` reads."""

    topic = "orders.events"

    async def read(self, partition: int, start: int | None,
                   sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> int:
        await sink([StoredRecord(0, None, b"claim", tuple(CLAIM))])
        return 1

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]:
        return {p: 1 for p in partitions}


async def test_a_reload_keeps_the_writers_epoch_and_claims_nothing_again() -> None:
    claims: list[int] = []

    async def claim(partition: int) -> int:  # each claim lands at the next offset
        claims.append(partition)
        return 40 + len(claims)

    states = OrderStates(OneRecordStore(), CODEC.decode_event, on_loaded=lambda p, s: None,
                         claim=claim)
    assert (await states.ready(5)).epoch == 41

    states.reload(5, after=())  # a refused delivery: fold again, as the same owner
    reloaded = await states.ready(5)

    assert claims == [5] and reloaded.epoch == 41
