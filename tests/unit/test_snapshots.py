"""Snapshots of the writer's states and the fold of the tail after one (issue 10, bounded
recovery), without a broker: the snapshot plus the tail folds to what the whole partition
folds to; a snapshot the tail does not continue, or that cannot be read, is refused so that the
caller folds the whole partition; an ended order keeps only its id and still decides nothing.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Collection

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from bench.order_histories import HistoryMaker, interleaved
from domain.orders.events import Event
from domain.orders.state import is_terminal
from schemas.snapshots import SnapshotCodec, SnapshotRecord, SnapshotUnreadable
from schemas.writer_fence import claim_headers, epoch_headers
from streams.event_store import StoredRecord
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import OrderStates
from streams.partition_fold import PartitionFold, PartitionStates, SnapshotMismatch
from streams.snapshots import SnapshotWriter, capture, encode, restore
from streams.terminal_ids import SEAL_AT, TerminalIds
from tests.orders_support import WriterStatuses
from tests.unit.stream_fakes import FakeClock, FakeOutbox, FakeStates, execute_order
from domain.orders.decide import ExecutionPolicy
from datetime import timedelta

from tests.unit.test_partition_fold import CODEC

SNAPSHOTS = SnapshotCodec(schema_id=42)
WHERE = "orders.events[0]"


def history(orders: int, seed: int = 3, in_flight: float = 0.3) -> list[StoredRecord]:
    """A claim, then the interleaved events of `orders` orders, some cut short (in flight)."""
    rng = random.Random(seed)
    stories = []
    for story in HistoryMaker(seed).orders(orders):
        stories.append(story[:rng.randint(1, len(story) - 1)] if rng.random() < in_flight
                       else story)
    statuses = WriterStatuses()
    records = [StoredRecord(0, None, b"w", tuple(claim_headers("w")))]
    for event in interleaved(stories):
        records.append(StoredRecord(len(records), event.order_id.encode(),
                                    CODEC.encode_event(event, status=statuses.after(event)),
                                    tuple(epoch_headers(0))))
    return records


def fold(records: list[StoredRecord], states: PartitionStates | None = None,
         strict: bool = False) -> PartitionStates:
    folding = PartitionFold(WHERE, CODEC.decode_event, states, strict=strict)
    folding.feed(records)
    folding.states.end = folding.states.folded_end = (records[-1].offset + 1 if records
                                                      else folding.states.end)
    return folding.states


async def snapshot_of(states: PartitionStates) -> bytes:
    captured = capture(0, states)
    assert captured is not None
    record = await encode(captured, lambda e, s: CODEC.encode_event(e, status=s), "w", 0)
    return SNAPSHOTS.encode(record)


def same(a: PartitionStates, b: PartitionStates) -> None:
    assert a.orders == b.orders
    assert a.quarantined == b.quarantined
    assert a.fence_epoch == b.fence_epoch
    ended = {o for o in a.histories} | set(a.orders)
    assert not any(o in b.terminal for o in ended)


@settings(max_examples=10, deadline=None, phases=(Phase.generate,))
@given(st.integers(1, 2000), st.integers(1, 1000))
def test_the_snapshot_and_the_tail_fold_to_what_the_whole_partition_folds_to(
    cut: int, seed: int,
) -> None:
    records = history(60, seed)
    cut = min(cut, len(records))
    whole = fold(records)

    value = asyncio.run(snapshot_of(fold(records[:cut])))
    restored = restore(SNAPSHOTS.decode(value), CODEC.decode_event, 0)
    tail = fold(records[cut:], restored, strict=True)

    same(tail, whole)
    assert len(tail.terminal) == len(whole.terminal) > 0
    assert all(is_terminal(s) is False for s in tail.orders.values())


def test_only_orders_in_flight_are_kept_whole_the_ended_as_ids() -> None:
    states = fold(history(200, in_flight=0.1))

    assert 0 < len(states.orders) < 60 and len(states.terminal) > 140
    assert set(states.histories) == set(states.orders)
    assert not any(o in states.terminal for o in states.orders)


def test_a_tail_that_does_not_continue_the_snapshot_is_a_mismatch() -> None:
    records = history(40, in_flight=0.0)
    cut = len(records) // 2
    snapshot = fold(records[:cut])
    victim = next(iter(snapshot.orders))  # the snapshot "lost" an order in flight
    snapshot.orders.pop(victim)
    snapshot.histories.pop(victim)

    with pytest.raises(SnapshotMismatch, match=victim):
        fold(records[cut:], snapshot, strict=True)


def test_a_corrupt_or_foreign_snapshot_is_unreadable() -> None:
    value = asyncio.run(snapshot_of(fold(history(20))))

    assert SNAPSHOTS.decode(value).partition == 0
    with pytest.raises(SnapshotUnreadable, match="schema id 42"):
        SnapshotCodec(schema_id=7).decode(value)
    with pytest.raises(SnapshotUnreadable, match="corrupt"):
        SNAPSHOTS.decode(value[:-7])
    with pytest.raises(SnapshotUnreadable):
        SNAPSHOTS.decode(b"garbage")


def test_a_snapshot_whose_order_does_not_fold_is_a_mismatch() -> None:
    record = SNAPSHOTS.decode(asyncio.run(snapshot_of(fold(history(20, in_flight=1.0)))))
    order_id, events = record.orders[0]
    broken = SnapshotRecord(**{**_fields(record), "orders": ((order_id, events[1:]),)})

    with pytest.raises(SnapshotMismatch, match=order_id):
        restore(broken, CODEC.decode_event, 0)
    with pytest.raises(SnapshotMismatch, match="partition 0"):
        restore(record, CODEC.decode_event, 3)


def _fields(record: SnapshotRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}


# --- terminal ids ---------------------------------------------------------------------------

@settings(max_examples=30, deadline=None, phases=(Phase.generate,))
@given(st.lists(st.uuids(version=4).map(str) | st.text(min_size=1, max_size=8),
                max_size=300), st.lists(st.uuids(version=4).map(str), max_size=50))
def test_terminal_ids_answer_exactly_like_a_set(added: list[str], others: list[str]) -> None:
    ids = TerminalIds()
    for order_id in added:
        ids.add(order_id)
    restored = TerminalIds(ids.runs(), ids.others())

    for candidate in [*added, *others, "", added[0].upper() if added else "x"]:
        assert (candidate in ids) == (candidate in set(added)) == (candidate in restored)
    assert len(ids) == len(set(added)) == len(restored)


def test_terminal_ids_take_16_bytes_each_in_sorted_runs() -> None:
    ids = TerminalIds()
    rng = random.Random(5)
    added = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3 * SEAL_AT)]
    for order_id in added:
        ids.add(order_id)
    runs = ids.runs()

    assert sum(len(run) for run in runs) == 16 * len(added)
    assert len(runs) <= 3 and all(order_id in ids for order_id in added)
    assert ids.nbytes() == 16 * len(added)
    with pytest.raises(ValueError, match="not sorted"):
        TerminalIds([runs[0][16:32] + runs[0][:16]])


# --- the writer and the store ---------------------------------------------------------------

async def test_an_ended_order_known_only_by_its_id_decides_nothing() -> None:
    states = FakeStates()
    writer = OrderWriter(states, FakeOutbox(), WriterConfig(ExecutionPolicy(),
                                                            timedelta(minutes=1)), FakeClock())
    order_id = str(uuid.uuid4())
    (await states.ready(0)).terminal.add(order_id)

    decided = await writer.handle(0, execute_order(order_id))

    assert decided.events == () and order_id not in (await states.ready(0)).orders


def test_states_are_durable_only_when_every_record_since_the_fold_is_the_writer_s() -> None:
    states = fold(history(10))
    assert states.durable()

    loop = asyncio.new_event_loop()
    try:
        mine: asyncio.Future[object] = loop.create_future()
        states.appending([mine])
        assert not states.durable()  # on its way
        mine.set_result(_Offset((states.end or 0) + 1))  # one record of someone else before
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert not states.durable() and capture(0, states) is None


class _Offset:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class MemoryStore:
    """`orders.events[0]` and `orders.snapshots[0]` in memory."""

    topic = "orders.events"

    def __init__(self, records: list[StoredRecord]) -> None:
        self.records = records
        self.snapshot: bytes | None = None
        self.read_from: list[int | None] = []

    async def read(self, partition: int, start: int | None,
                   sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> int:
        self.read_from.append(start)
        await sink(self.records[start or 0:])
        return len(self.records)

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]:
        return {p: len(self.records) for p in partitions}

    async def claim(self, partition: int) -> int:
        self.records.append(StoredRecord(len(self.records), None, b"w",
                                         tuple(claim_headers("w"))))
        return len(self.records) - 1

    async def latest(self, partition: int) -> SnapshotRecord | None:
        return None if self.snapshot is None else SNAPSHOTS.decode(self.snapshot)

    def restore(self, snapshot: SnapshotRecord,
                decode: Callable[[bytes], Event]) -> PartitionStates:
        return restore(snapshot, decode, snapshot.partition)

    async def write(self, snapshot: SnapshotRecord) -> int:
        self.snapshot = SNAPSHOTS.encode(snapshot)
        return len(self.snapshot)


def order_states(store: MemoryStore) -> OrderStates:
    return OrderStates(store, CODEC.decode_event, on_loaded=lambda p, s: None,
                       claim=store.claim, snapshots=store)


async def test_a_worker_folds_only_the_tail_after_the_latest_snapshot() -> None:
    store = MemoryStore(history(60))
    first = order_states(store)
    loaded = await first.ready(0)
    writer = SnapshotWriter(first.loaded, store,  # type: ignore[arg-type]
                            lambda e, s: CODEC.encode_event(e, status=s), "w",
                            every_events=1, interval_s=60)
    assert await writer.write_due() == 1
    covered = len(store.records)
    for record in history(10, seed=99)[1:]:  # more events by the same writer after it ...
        store.records.append(StoredRecord(len(store.records), record.key, record.value,
                                          tuple(epoch_headers(loaded.epoch or 0))))

    second = await order_states(store).ready(0)  # ... and another worker takes over

    assert store.read_from == [None, covered]
    whole = fold(list(store.records))
    same(second, whole)
    assert len(second.terminal) == len(whole.terminal) > len(loaded.terminal)


async def test_a_corrupt_snapshot_falls_back_to_the_whole_partition() -> None:
    store = MemoryStore(history(30))
    store.snapshot = b"\x00\x00\x00\x00\x2a" + b"\xff" * 40

    states = await order_states(store).ready(0)

    assert store.read_from == [None]
    same(states, fold(list(store.records)))
