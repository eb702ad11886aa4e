"""Snapshots of the writer's states and the fold of the tail after one (issue 10, bounded
recovery), without a broker: the snapshot plus the tail folds to what the whole partition
folds to, chain heads included (ended orders' too), so an order in flight at the restore
chains on and the log verifies; a snapshot the tail does not continue, that cannot be read,
or that carries no heads (v1), is refused so that the caller folds the whole partition; an
ended order keeps only its id and head and still decides nothing.
"""

from __future__ import annotations

import asyncio
import io
import random
import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from decimal import Decimal

import fastavro
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from bench.order_histories import HistoryMaker, interleaved
from domain.orders.commands import CancelOrder, Command, ObservePrice
from domain.orders.events import Event
from domain.orders.decide import ExecutionPolicy, decide
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state, is_terminal
from domain.orders.status import OrderStatus
from oee.settings import Topics
from schemas.chain import GENESIS, ChainCheck, merkle_root
from schemas.snapshots import SnapshotCodec, SnapshotRecord, SnapshotUnreadable
from schemas.versions import load_history
from schemas.writer_fence import claim_headers, epoch_headers
from streams.event_store import StoredRecord
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import OrderStates
from streams.outbox import KafkaOutbox
from schemas.codec import EventEnvelope
from streams.partition_fold import Decode, PartitionFold, PartitionStates, SnapshotMismatch
from streams.snapshots import Captured, Encoded, SnapshotWriter, capture, encode, restore
from streams.terminal_ids import SEAL_AT, Run, TerminalIds
from tests.orders_support import WriterStatuses
from tests.unit.stream_fakes import T0, FakeClock, FakeOutbox, FakeStates, execute_order
from tests.unit.test_history_elision import ORDER, limit_order
from tests.unit.test_history_elision import history as order_history
from tests.unit.test_partition_fold import CODEC

SNAPSHOTS = SnapshotCodec(schema_id=42)
SNAPSHOT_V1 = dict(load_history("order_snapshot").versions[1])
TOPICS = Topics()
WHERE = "orders.events[0]"


def history(orders: int, seed: int = 3, in_flight: float = 0.3,
            unchained: float = 0.0) -> list[StoredRecord]:
    """A claim, then the interleaved events of `orders` orders, some cut short (in flight),
    chained as the writer chains them, except for the share `unchained` of the orders
    (written before the chain: no hashes, no head)."""
    rng = random.Random(seed)
    stories = []
    for story in HistoryMaker(seed).orders(orders):
        stories.append(story[:rng.randint(1, len(story) - 1)] if rng.random() < in_flight
                       else story)
    old = {story[0].order_id for story in stories if rng.random() < unchained}
    statuses = WriterStatuses()
    heads: dict[str, bytes] = {}
    records = [StoredRecord(0, None, b"w", tuple(claim_headers("w")))]
    for event in interleaved(stories):
        status = statuses.after(event)
        if event.order_id in old:
            value = CODEC.encode_event(event, status=status)
        else:
            value, heads[event.order_id] = CODEC.encode_chained_event(
                event, status=status, prev_hash=heads.get(event.order_id, GENESIS))
        records.append(StoredRecord(len(records), event.order_id.encode(), value,
                                    tuple(epoch_headers(0))))
    return records


def fold(records: list[StoredRecord], states: PartitionStates | None = None,
         strict: bool = False) -> PartitionStates:
    folding = PartitionFold(WHERE, CODEC.decode_envelope, states, strict=strict)
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
    restored = restore(SNAPSHOTS.decode(value), CODEC.decode_envelope, 0)
    tail = fold(records[cut:], restored, strict=True)

    same(tail, whole)
    assert len(tail.terminal) == len(whole.terminal) > 0
    assert all(is_terminal(s) is False for s in tail.orders.values())


@settings(max_examples=10, deadline=None, phases=(Phase.generate,))
@given(st.integers(1, 2000), st.integers(1, 1000))
def test_a_lazy_restore_and_tail_reach_the_whole_fold_once_every_order_is_touched(
    cut: int, seed: int,
) -> None:
    """The snapshot's orders and the tail's records set aside undecoded, then folded order
    by order: the same states and heads as the whole partition's fold, a re-decided
    duplicate in the tail (same seq, another hash) moving no head."""
    records = history(60, seed, unchained=0.2)
    cut = min(cut, len(records) - 1)
    event = CODEC.decode_event(records[-1].value or b"")
    again, _ = CODEC.encode_chained_event(event, status=WriterStatuses().after(event),
                                          prev_hash=bytes([7]) * 32)
    records.append(StoredRecord(len(records), records[-1].key, again, records[-1].headers))
    whole = fold(records)

    restored = restore(SNAPSHOTS.decode(asyncio.run(snapshot_of(fold(records[:cut])))),
                       CODEC.decode_envelope, 0, lazy=True)
    PartitionFold(WHERE, CODEC.decode_envelope, restored, strict=True,
                  lazy=True).feed(records[cut:])
    assert restored.orders == {} and restored.lazy()
    while restored.lazy():
        restored.restore_some(7)

    same(restored, whole)
    assert restored.all_heads() == whole.all_heads()
    assert len(restored.terminal) == len(whole.terminal)


def test_a_tail_record_keyed_for_another_order_quarantines_that_order() -> None:
    records = history(10, in_flight=1.0)
    victim = records[1].key or b""
    other = next(r for r in records if r.key not in (None, victim))
    forged = StoredRecord(len(records), victim, other.value, other.headers)
    states = PartitionStates(decode=CODEC.decode_envelope)
    PartitionFold(WHERE, CODEC.decode_envelope, states, lazy=True).feed([*records, forged])

    assert states.state_of(victim.decode()) is None
    assert "holds an event of order" in states.quarantined[victim.decode()]
    assert states.state_of((other.key or b"").decode()) is not None  # the others flow


@settings(max_examples=10, deadline=None, phases=(Phase.generate,))
@given(st.integers(1, 2000), st.integers(1, 1000))
def test_a_restored_partition_holds_exactly_the_heads_the_whole_fold_holds(
    cut: int, seed: int,
) -> None:
    records = history(60, seed, unchained=0.2)
    cut = min(cut, len(records))
    whole = fold(records)
    at_cut = fold(records[:cut])

    restored = restore(SNAPSHOTS.decode(asyncio.run(snapshot_of(at_cut))),
                       CODEC.decode_envelope, 0)

    assert restored.all_heads() == at_cut.all_heads()  # in flight and ended alike
    tail = fold(records[cut:], restored, strict=True)
    assert tail.all_heads() == whole.all_heads() == check(records).heads
    assert merkle_root(tail.all_heads()) == merkle_root(whole.all_heads())  # next checkpoint


def test_an_ended_order_s_head_is_kept_beside_its_id_not_by_order_id() -> None:
    records = history(200, in_flight=0.1)
    states = fold(records)

    assert set(states.heads) <= set(states.orders)  # memory follows the orders in flight
    assert states.all_heads() == check(records).heads  # a checkpoint still pins them all


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
    order_id, events, head = record.orders[0]
    broken = SnapshotRecord(**{**_fields(record), "orders": ((order_id, events[1:], head),)})

    with pytest.raises(SnapshotMismatch, match=order_id):
        restore(broken, CODEC.decode_event, 0)
    with pytest.raises(SnapshotMismatch, match="partition 0"):
        restore(record, CODEC.decode_event, 3)


def v1_value(record: SnapshotRecord, schema_id: int) -> bytes:
    """`record` as a v1 writer wrote it: the v1 schema, no heads at all."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(SNAPSHOT_V1), {
        "partition": record.partition, "offset": record.offset,
        "fence_epoch": record.fence_epoch, "writer": record.writer,
        "taken_at_ms": record.taken_at_ms, "events": record.events,
        "orders": [{"order_id": o, "events": list(e)} for o, e, _ in record.orders],
        "quarantined": [{"order_id": o, "reason": r} for o, r in record.quarantined],
        "terminal_uuids": list(record.terminal_uuids),
        "terminal_other": list(record.terminal_other)})
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def test_a_v1_snapshot_is_read_but_not_restored_it_has_no_chain_heads() -> None:
    states = fold(history(30))
    record = SNAPSHOTS.decode(asyncio.run(snapshot_of(states)))
    reading_both = SnapshotCodec(42, older={41: SNAPSHOT_V1})

    old = reading_both.decode(v1_value(record, 41))

    assert (old.orders[0][:2], old.terminal_uuids) == (record.orders[0][:2],
                                                        record.terminal_uuids)
    assert old.heads_complete is False and old.terminal_heads == () and old.orders[0][2] is None
    assert record.heads_complete is True
    with pytest.raises(SnapshotMismatch, match="no chain heads"):
        restore(old, CODEC.decode_envelope, 0)
    with pytest.raises(SnapshotUnreadable, match="schema id 41"):
        SNAPSHOTS.decode(v1_value(record, 41))  # a codec that does not know v1's id


async def test_a_worker_finding_a_v1_snapshot_folds_the_whole_partition() -> None:
    store = MemoryStore(history(40))
    record = SNAPSHOTS.decode(await snapshot_of(fold(list(store.records))))
    store.snapshot, store.codec = v1_value(record, 41), SnapshotCodec(42, older={41: SNAPSHOT_V1})

    states = await order_states(store).ready(0)

    assert store.read_from == [None]
    whole = fold(list(store.records))
    same(states, whole)
    assert states.all_heads() == whole.all_heads()
    assert len(states.all_heads()) > len(states.orders)


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


@settings(max_examples=20, deadline=None, phases=(Phase.generate,))
@given(st.integers(0, 3 * SEAL_AT), st.integers(0, 40), st.integers(0, 10_000))
def test_terminal_ids_keep_each_ended_order_s_head_through_runs_and_a_snapshot(
    uuids: int, others: int, seed: int,
) -> None:
    rng = random.Random(seed)
    ids, expected = TerminalIds(), {}
    for n in range(uuids + others):
        order_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) if n < uuids
                    else f"order-{n}")
        head = rng.randbytes(32) if rng.random() < 0.8 else None  # None: before the chain
        ids.add(order_id, head)
        ids.add(order_id, rng.randbytes(32))  # ended once: its head never changes again
        if head is not None:
            expected[order_id] = head

    restored = TerminalIds(ids.runs(), ids.others(), ids.heads(), ids.other_heads())

    assert dict(ids.with_heads()) == dict(restored.with_heads()) == expected
    assert len(restored) == uuids + others


def test_terminal_ids_take_16_bytes_each_and_32_for_the_head_in_sorted_runs() -> None:
    ids = TerminalIds()
    rng = random.Random(5)
    added = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3 * SEAL_AT)]
    for order_id in added:
        ids.add(order_id)
    runs = ids.runs()

    assert sum(len(run) for run in runs) == 16 * len(added)
    assert len(runs) <= 3 and all(order_id in ids for order_id in added)
    assert ids.nbytes() == (16 + 32) * len(added)
    with pytest.raises(ValueError, match="not sorted"):
        TerminalIds([runs[0][16:32] + runs[0][:16]])


def test_a_run_is_sorted_only_if_its_whole_keys_strictly_ascend() -> None:
    low, high = bytes(8) + bytes(7) + b"\x01", bytes(8) + bytes(7) + b"\x02"  # tie: 8 bytes
    rng = random.Random(3)
    ascending = b"".join(sorted(rng.randbytes(16) for _ in range(1000)))

    assert Run(ascending).is_sorted() and Run(low + high).is_sorted()
    assert not Run(high + low).is_sorted() and not Run(low + low).is_sorted()
    assert not Run(ascending[16:32] + ascending[:16] + ascending[32:]).is_sorted()
    assert Run(b"").is_sorted() and Run(low).is_sorted()


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
        self.codec = SNAPSHOTS
        self.read_from: list[int | None] = []
        self.lazy = False  # restore as the worker's store does: the orders on first touch

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
        return None if self.snapshot is None else self.codec.decode(self.snapshot)

    def restore(self, snapshot: SnapshotRecord, decode: Decode) -> PartitionStates:
        return restore(snapshot, decode, snapshot.partition, lazy=self.lazy)

    async def write(self, snapshot: SnapshotRecord) -> int:
        self.snapshot = self.codec.encode(snapshot)
        return len(self.snapshot)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> asyncio.Future[_Offset]:
        """The writer's producer: an event lands at the end of the partition at once."""
        done: asyncio.Future[_Offset] = asyncio.get_running_loop().create_future()
        if topic == TOPICS.events:
            self.records.append(StoredRecord(len(self.records), key, value,
                                             tuple(headers or ())))
            done.set_result(_Offset(len(self.records) - 1))
        else:
            done.set_result(_Offset(-1))
        return done


def order_states(store: MemoryStore) -> OrderStates:
    return OrderStates(store, CODEC.decode_envelope, on_loaded=lambda p, s: None,
                       claim=store.claim, snapshots=store)


def snapshot_writer(states: OrderStates, store: MemoryStore) -> SnapshotWriter:
    return SnapshotWriter(states.loaded, store,  # type: ignore[arg-type]
                          lambda e, s: CODEC.encode_event(e, status=s), "w",
                          every_events=1, interval_s=60)


def check(records: list[StoredRecord]) -> ChainCheck:
    """`oee replay --verify`'s check of the partition (claims skipped)."""
    chain = ChainCheck()
    for record in records:
        if record.key is None or record.value is None:
            continue
        event = CODEC.decode_event(record.value)
        chain.add(event.order_id, event.seq, CODEC.chain_link(record.value), TOPICS.events, 0,
                  record.offset)
    return chain


async def test_an_order_in_flight_at_a_restore_chains_on_and_the_log_verifies() -> None:
    store = MemoryStore(history(60, in_flight=0.5))
    first = order_states(store)
    await first.ready(0)
    assert await snapshot_writer(first, store).write_due() == 1

    second = order_states(store)  # another worker takes over, from the snapshot
    restored = await second.ready(0)
    writer = OrderWriter(second, KafkaOutbox(store, TOPICS, CODEC),
                         WriterConfig(ExecutionPolicy(), timedelta(minutes=1)), FakeClock())
    seqs = {order_id: state.seq for order_id, state in restored.orders.items()}
    heads = dict(restored.heads)
    moved = []
    for order_id in seqs:  # each order in flight at the restore decides its next event
        decided = await writer.handle(0, CancelOrder(command_id=f"cancel-{order_id}",
                                                     order_id=order_id, issued_at=T0))
        moved += [e for e in decided.events if e.seq == seqs[order_id] + 1]

    assert store.read_from == [None, restored.snapshot_offset] and len(moved) > 10
    next_events = {e.event.order_id: e for e in map(CODEC.decode_envelope, (
        r.value for r in store.records[restored.snapshot_offset or 0:] if r.value and r.key))
        if e.event.seq == seqs.get(e.event.order_id, -1) + 1}
    assert {o: e.prev_hash for o, e in next_events.items()} == {o: heads[o] for o in next_events}
    chain = check(store.records)
    assert chain.broken == [] and chain.unchained == 0
    # what the next checkpoint pins is what `oee replay --verify` recomputes
    assert chain.heads == restored.all_heads()


async def test_a_worker_folds_only_the_tail_after_the_latest_snapshot() -> None:
    store = MemoryStore(history(60))
    first = order_states(store)
    loaded = await first.ready(0)
    assert await snapshot_writer(first, store).write_due() == 1
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


# --- what a snapshot costs: a waiting order's history, events encoded once ---------------------

def waiting_with_observations(observations: int) -> list[StoredRecord]:
    """A claim, then a limit order that waits and sees `observations` new best prices."""
    at = (T0 + timedelta(seconds=n) for n in range(10 * observations + 10))
    commands: list[Command] = [limit_order()]
    commands += [ObservePrice(command_id=f"o{n}", order_id=ORDER, issued_at=next(at),
                              best_price=Decimal(150) + Decimal(n % 7) / 4 + n)
                 for n in range(observations)]
    events, _ = order_history(commands)
    statuses, heads = WriterStatuses(), {}
    records = [StoredRecord(0, None, b"w", tuple(claim_headers("w")))]
    for event in events:
        value, heads[ORDER] = CODEC.encode_chained_event(
            event, status=statuses.after(event), prev_hash=heads.get(ORDER, GENESIS))
        records.append(StoredRecord(len(records), ORDER.encode(), value,
                                    tuple(epoch_headers(0))))
    return records


def test_a_waiting_order_s_snapshot_does_not_grow_with_its_price_observations() -> None:
    few, many = fold(waiting_with_observations(3)), fold(waiting_with_observations(600))

    value = asyncio.run(snapshot_of(many))
    restored = restore(SNAPSHOTS.decode(value), CODEC.decode_envelope, 0)

    assert [len(s.histories[ORDER]) for s in (few, many)] == [3, 3]  # accepted, waiting, last
    assert many.orders[ORDER].seq == 602 and restored.orders == many.orders
    assert restored.heads == many.heads
    assert len(value) < len(asyncio.run(snapshot_of(few))) + 100
    tail = fold(waiting_with_observations(601)[-1:], restored, strict=True)  # it goes on
    assert tail.orders[ORDER].seq == 603 and len(tail.histories[ORDER]) == 3


async def test_a_snapshot_encodes_only_the_events_the_last_one_did_not() -> None:
    states = fold(history(60, in_flight=0.6))
    encoded: list[Event] = []

    def encode_event(event: Event, status: OrderStatus) -> bytes:
        encoded.append(event)
        return CODEC.encode_event(event, status=status)

    known: dict[str, Encoded] = {}
    captured = capture(0, states)
    assert captured is not None
    first = await encode(captured, encode_event, "w", 0, known)
    in_flight = sum(len(h) for h in states.histories.values())
    again = await encode(captured, encode_event, "w", 0, known)
    refolded = capture(0, fold(history(60, in_flight=0.6)))  # new event objects
    assert refolded is not None
    third = await encode(refolded, encode_event, "w", 0, known)

    assert len(encoded) == 2 * in_flight > 0  # the first and the third, not the second
    assert first == again == third


async def test_no_snapshot_covers_a_child_s_end_before_its_report_to_the_parent_is_stored(
) -> None:
    # Else a crash after the snapshot and before the report: the fold starts past the child's
    # last event and never learns it has a report to send again.
    outbox, states = FakeOutbox(ack_manually=True), FakeStates()
    writer = OrderWriter(states, outbox, WriterConfig(ExecutionPolicy(), timedelta(minutes=1)),
                         FakeClock())
    partition = await states.ready(0)
    partition.end = partition.folded_end = 0  # as a fold of an empty partition leaves them
    stored_events = 0

    async def store(kinds: set[str]) -> None:
        nonlocal stored_events
        for _ in range(5):
            for sent in outbox.sent:
                if sent.kind in kinds and not sent.delivery.done():
                    sent.delivery.set_result(_Offset(stored_events) if sent.kind == "events"
                                             else None)
                    stored_events += sent.kind == "events"
            await asyncio.sleep(0)

    placed = await writer.handle(0, execute_order("child", parent_id="parent"))
    await store({"events", "work", "command"})
    assert placed.settled is not None and placed.settled.done()
    ended = await writer.handle(0, CancelOrder(command_id="c", order_id="child",
                                               issued_at=T0))
    await store({"events"})  # the child's end is stored, its report to the parent not yet
    assert "child" in partition.terminal and partition.durable()
    assert capture(0, partition) is None

    await store({"command"})
    assert ended.settled is not None and ended.settled.done()
    captured = capture(0, partition)
    assert captured is not None and captured.offset == stored_events


async def test_a_takeover_shows_the_writer_the_children_that_ended_after_the_snapshot() -> None:
    from tests.unit.test_partition_fold import stored

    def child_history(order_id: str) -> list[Event]:
        state, events = initial_state(order_id), []
        for command in (execute_order(order_id, parent_id="parent"),
                        CancelOrder(command_id=f"c-{order_id}", order_id=order_id,
                                    issued_at=T0)):
            for event in decide(state, command, now=T0, policy=ExecutionPolicy()):
                state = evolve(state, event)
                events.append(event)
        return events

    store = MemoryStore(stored(*child_history("before")))
    first = order_states(store)
    await first.ready(0)
    assert await snapshot_writer(first, store).write_due() == 1
    store.records.extend(StoredRecord(len(store.records) + i, r.key, r.value)
                         for i, r in enumerate(stored(*child_history("after"))))
    shown: list[OrderState] = []
    second = OrderStates(store, CODEC.decode_envelope, claim=store.claim, snapshots=store,
                         on_loaded=lambda p, states: shown.extend(states))

    await second.ready(0)

    assert [(s.order_id, s.status) for s in shown] == [("after", OrderStatus.CANCELLED)]


async def test_a_takeover_from_a_snapshot_is_ready_before_its_orders_in_flight_are_restored(
) -> None:
    """The snapshot's orders in flight are folded on first touch or behind the takeover;
    each is announced to on_loaded once, and no snapshot is taken until all are restored."""
    store = MemoryStore(history(60, in_flight=0.5))
    first = order_states(store)
    whole = await first.ready(0)
    assert await snapshot_writer(first, store).write_due() == 1
    store.lazy = True
    announced: list[str] = []
    at_ready: list[tuple[int, set[str], Captured | None]] = []
    seeded: list[tuple[dict[str, bytes], int]] = []

    def on_loaded(partition: int, states: list[OrderState]) -> None:
        if not at_ready:  # the first call: the partition is ready, its commands may flow
            ready = second.loaded()[partition]
            at_ready.append((len(ready.orders), ready.order_ids(), capture(partition, ready)))
        announced.extend(state.order_id for state in states)

    second = OrderStates(store, CODEC.decode_envelope, on_loaded=on_loaded,
                         claim=store.claim, snapshots=store,
                         on_folded=lambda p, states, last: seeded.append(
                             (states.all_heads(), last)))

    restored = await second.ready(0)

    # None was restored yet, and no snapshot could be taken before all are.
    assert at_ready == [(0, set(whole.orders), None)]
    touched = next(iter(whole.orders))
    writer = OrderWriter(second, KafkaOutbox(store, TOPICS, CODEC),
                         WriterConfig(ExecutionPolicy(), timedelta(minutes=1)), FakeClock())
    decided = await writer.handle(0, CancelOrder(command_id="c", order_id=touched,
                                                 issued_at=T0))
    assert decided.events[0].seq == whole.orders[touched].seq + 1  # its restored state
    await second.settled()
    assert restored.unrestored == {} and sorted(announced) == sorted(whole.orders)
    # The checkpoints are seeded once all is restored and durable: exactly the heads of the
    # partition up to the offset they say (a fold of it).
    ((heads, last),) = seeded
    assert heads == fold(store.records[:last + 1]).all_heads()
    assert last >= restored.folded_end - 1
    assert {o: s for o, s in restored.orders.items() if o != touched} == {
        o: s for o, s in whole.orders.items() if o != touched}
    await asyncio.sleep(0)  # the cancellation's delivery callbacks
    assert capture(0, restored) is not None


def test_a_snapshot_order_that_does_not_fold_on_first_touch_is_quarantined_alone() -> None:
    record = SNAPSHOTS.decode(asyncio.run(snapshot_of(fold(history(20, in_flight=1.0)))))
    (order_id, events, head), *others = record.orders
    broken = SnapshotRecord(**{**_fields(record),
                               "orders": ((order_id, events[1:], head), *others)})

    states = restore(broken, CODEC.decode_event, 0, lazy=True)

    assert states.state_of(order_id) is None and "do not fold" in states.quarantined[order_id]
    assert order_id not in states.heads
    states.restore_some(len(others))
    assert set(states.orders) == {o for o, _, _ in others} and not states.unrestored


async def test_a_takeover_decodes_nothing_before_the_partition_is_ready() -> None:
    """Neither the snapshot's orders nor the tail's records are decoded before the partition
    is ready; once all is restored, the states are the whole partition's fold."""
    records = history(80, in_flight=0.4)
    store = MemoryStore(records)
    store.snapshot = await snapshot_of(fold(records[:len(records) // 2]))
    store.lazy = True
    decoded: list[bytes] = []

    def counting(value: bytes) -> Event | EventEnvelope:
        decoded.append(value)
        return CODEC.decode_envelope(value)

    at_ready: list[int] = []
    taking = OrderStates(store, counting, claim=store.claim, snapshots=store,
                         on_loaded=lambda p, s: at_ready.append(len(decoded)))
    states = await taking.ready(0)
    await taking.settled()

    assert at_ready[0] == 0 and len(decoded) > len(records) // 2
    whole = fold(store.records)
    same(states, whole)
    assert states.all_heads() == whole.all_heads()
