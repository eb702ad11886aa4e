"""The event store's hash chain (schemas.chain): the math, the writer's appends, the fold's
heads and the check that names the first broken link."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from domain.orders.commands import CancelOrder
from domain.orders.decide import ExecutionPolicy
from oee.settings import Topics
from schemas.chain import (
    GENESIS, ChainCheck, chained_body, link_hash, merkle_leaf, merkle_root,
)
from schemas.codec import Codec
from streams.event_store import StoredRecord
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import fold_partition
from streams.outbox import KafkaOutbox
from tests.orders_support import WriterStatuses
from tests.unit.stream_fakes import T0, FakeClock, FakeStates, execute_order
from tests.unit.test_partition_fold import accepted

CODEC = Codec.load()
TOPICS = Topics()
SHA = hashlib.sha256


def test_a_link_is_sha256_of_the_previous_hash_and_the_canonical_bytes() -> None:
    # SHA-256 of 32 zero bytes followed by "abc" (a fixed test vector)
    assert link_hash(GENESIS, b"abc").hex() == (
        "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370")
    with pytest.raises(ValueError, match="32 bytes"):
        link_hash(b"short", b"abc")


def test_the_hashes_are_spliced_into_the_two_null_fields_at_the_end() -> None:
    body, digest = chained_body(b"body\x00\x00", GENESIS)
    assert digest == SHA(GENESIS + b"body\x00\x00").digest()
    assert body == b"body" + b"\x02" + GENESIS + b"\x02" + digest
    with pytest.raises(ValueError, match="null hash"):
        chained_body(b"body", GENESIS)


def test_the_merkle_root_pairs_sorted_leaves_and_carries_an_odd_one_up() -> None:
    heads = {"c": SHA(b"3").digest(), "a": SHA(b"1").digest(), "b": SHA(b"2").digest()}
    leaf = {order: SHA(b"\x00" + head + order.encode()).digest() for order, head in heads.items()}
    assert merkle_leaf("a", heads["a"]) == leaf["a"]
    ab = SHA(b"\x01" + leaf["a"] + leaf["b"]).digest()
    assert merkle_root(heads) == SHA(b"\x01" + ab + leaf["c"]).digest()
    assert merkle_root({"a": heads["a"]}) == leaf["a"]
    assert merkle_root({}) == SHA(b"").digest()
    assert merkle_root({**heads, "b": SHA(b"changed").digest()}) != merkle_root(heads)


class Producer:
    """Keeps what the outbox produces, acknowledged at once, as the store would hold it."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.records: list[StoredRecord] = []
        self._fail_after = fail_after

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> Any:
        if self._fail_after is not None and len(self.records) >= self._fail_after:
            raise ConnectionError("producer unavailable")
        if topic == TOPICS.events:
            self.records.append(StoredRecord(len(self.records), key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def writer(producer: Producer, states: FakeStates) -> OrderWriter:
    config = WriterConfig(ExecutionPolicy(), timedelta(seconds=15))
    return OrderWriter(states, KafkaOutbox(producer, TOPICS, CODEC), config, FakeClock())


def check(records: list[StoredRecord]) -> ChainCheck:
    chain = ChainCheck()
    for record in records:
        assert record.value is not None
        event = CODEC.decode_event(record.value)
        chain.add(event.order_id, event.seq, CODEC.chain_link(record.value), TOPICS.events, 0,
                  record.offset)
    return chain


async def test_the_writer_chains_each_order_and_the_fold_restores_its_head() -> None:
    producer, states = Producer(), FakeStates()
    await writer(producer, states).handle(0, execute_order("a"))
    await writer(producer, states).handle(0, execute_order("b"))
    heads = states.partitions[0].heads

    first = [CODEC.decode_envelope(r.value or b"") for r in producer.records]
    assert [(e.event.order_id, e.event.seq) for e in first] == [("a", 1), ("a", 2),
                                                                 ("b", 1), ("b", 2)]
    assert first[0].prev_hash == GENESIS and first[1].prev_hash == first[0].hash
    assert first[2].prev_hash == GENESIS
    assert heads == {"a": first[1].hash, "b": first[3].hash}
    folded = fold_partition("orders.events[0]", producer.records, CODEC.decode_envelope)
    assert folded.states.heads == heads

    # a writer that folded the store chains its next event to the stored head
    states.partitions[0] = folded.states
    cancel = CancelOrder(command_id="cancel-a", order_id="a", issued_at=T0)
    await writer(producer, states).handle(0, cancel)
    last = CODEC.decode_envelope(producer.records[-1].value or b"")
    assert (last.event.seq, last.prev_hash) == (3, first[1].hash)
    chain = check(producer.records)
    assert chain.broken == [] and chain.heads == states.partitions[0].heads


async def test_events_that_could_not_be_enqueued_leave_the_heads_as_they_were() -> None:
    producer, states = Producer(fail_after=1), FakeStates()
    outbox = KafkaOutbox(producer, TOPICS, CODEC)
    heads: dict[str, bytes] = {}
    a1, a2 = accepted("a")
    statuses = WriterStatuses()
    with pytest.raises(ConnectionError):
        await outbox.events(0, [a1, a2], [statuses.after(a1), statuses.after(a2)], 0, heads)
    assert heads == {}


def chained_log() -> list[StoredRecord]:
    """Orders a and b, two chained events each, interleaved at offsets 0..3."""
    producer = Producer()
    outbox = KafkaOutbox(producer, TOPICS, CODEC)
    heads: dict[str, bytes] = {}
    statuses = WriterStatuses()
    a1, a2 = accepted("a")
    b1, b2 = accepted("b")
    events = [a1, b1, a2, b2]

    async def append() -> None:
        for event in events:
            await outbox.events(0, [event], [statuses.after(event)], 0, heads)

    asyncio.run(append())
    return producer.records


def tamper(record: StoredRecord, old: bytes, new: bytes) -> StoredRecord:
    """The record with the first `old` (its correlation id) rewritten as `new`."""
    assert record.value is not None and old in record.value
    return StoredRecord(record.offset, record.key, record.value.replace(old, new, 1))


def test_an_intact_log_verifies_and_its_heads_are_the_last_hashes() -> None:
    records = chained_log()
    chain = check(records)
    assert chain.broken == [] and chain.events == 4 and chain.unchained == 0
    last = {CODEC.decode_event(r.value or b"").order_id: CODEC.decode_envelope(r.value or b"").hash
            for r in records}
    assert chain.heads == last


def test_a_rewritten_event_breaks_the_chain_at_its_seq_and_offset() -> None:
    records = chained_log()
    a2 = records[2]
    records[2] = tamper(a2, b"execute-a", b"execute-X")  # its correlation id, rewritten

    (broken,) = check(records).broken
    assert (broken.order_id, broken.seq, broken.partition, broken.offset) == ("a", 2, 0, 2)
    assert "the event was changed" in broken.reason


def test_a_rewritten_event_with_its_hash_recomputed_breaks_at_the_next_seq() -> None:
    records = chained_log()
    a1 = CODEC.decode_envelope(records[0].value or b"")
    assert a1.status is not None
    forged = dataclasses.replace(a1.event, causation_id="forged")
    records[0] = StoredRecord(0, b"a", CODEC.encode_chained_event(
        forged, status=a1.status, prev_hash=GENESIS)[0])

    (broken,) = check(records).broken
    assert (broken.order_id, broken.seq, broken.offset) == ("a", 2, 2)
    assert "is not the previous event's hash" in broken.reason


def test_a_missing_event_is_a_broken_link_at_the_seq_after_it() -> None:
    records = chained_log()
    del records[0]

    (broken,) = check(records).broken
    assert (broken.order_id, broken.seq, broken.offset) == ("a", 2, 2)
    assert "seq 2 follows 0" in broken.reason


def test_the_chain_starts_at_the_first_v5_event_and_no_event_may_leave_it() -> None:
    statuses = WriterStatuses()
    a1, a2 = accepted("a")
    plain = CODEC.encode_event(a1, status=statuses.after(a1))  # as before v5: no hashes
    chained, _ = CODEC.encode_chained_event(a2, status=statuses.after(a2), prev_hash=GENESIS)
    chain = check([StoredRecord(0, b"a", plain), StoredRecord(1, b"a", chained)])
    assert chain.broken == [] and chain.unchained == 1 and "a" in chain.heads

    b1, b2 = accepted("b")
    first, _ = CODEC.encode_chained_event(b1, status=statuses.after(b1), prev_hash=GENESIS)
    unhashed = CODEC.encode_event(b2, status=statuses.after(b2))
    (broken,) = check([StoredRecord(0, b"b", first), StoredRecord(1, b"b", unhashed)]).broken
    assert (broken.seq, broken.reason) == (2, "no hash, but the order's chain had started")


def test_a_redecided_duplicate_is_skipped_as_the_fold_skips_it() -> None:
    records = chained_log()
    records.append(StoredRecord(4, b"a", records[2].value))
    chain = check(records)
    assert chain.broken == [] and chain.duplicates == 1
