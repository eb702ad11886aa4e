"""Bounded recovery against the real broker and registry (issue 10): a writer snapshots its
partition to `orders.snapshots`, more events follow, and a worker taking the partition over
folds only the tail after the snapshot, then decides correctly (an ended order's duplicate
decides nothing, an order in flight goes on with the next seq, chained to its head, so
`oee replay --verify` finds every link and every chain checkpoint intact). A snapshot that
cannot be read makes the next worker fold the whole partition, to the same states.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from domain.orders.decide import ExecutionPolicy
from infra.schema_registry import (
    registered_checkpoint_writer,
    registered_claim_writer,
    registered_snapshot_codec,
)
from oee.settings import Settings
from schemas.checkpoints import Checkpoint
from schemas.codec import Codec
from streams.checkpoints import Checkpoints
from streams.event_store import EventStoreReader
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import OrderStates, PartitionStates
from streams.outbox import KafkaOutbox
from streams.snapshots import SnapshotStore, SnapshotWriter
from tests.integration.test_event_store import accepted
from tests.integration.test_replay import replay
from tests.integration.test_writer_fence import AiokafkaSend, no_route, now, settled

PARTITION = 1


class Worker:
    """One worker's writer of the partition, as `streams.app` builds it (chained events, chain
    checkpoints after every event, snapshots), on a plain producer."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, name: str) -> None:
        codec = Codec.load()
        self.checkpoints = Checkpoints(settings.topics.events, self._publish, every_events=1,
                                       every_s=3600)
        self.outbox = KafkaOutbox(AiokafkaSend(producer), settings.topics, codec,
                                  checkpoints=self.checkpoints)
        self._checkpoint_value = registered_checkpoint_writer(settings)
        self.pinned: list[asyncio.Future[None]] = []
        claim_value = registered_claim_writer(settings)
        self.store = SnapshotStore(str(settings.kafka_bootstrap_servers),
                                   settings.topics.snapshots,
                                   registered_snapshot_codec(settings),
                                   settings.snapshot_max_bytes)
        self.states = OrderStates(
            EventStoreReader(str(settings.kafka_bootstrap_servers), settings.topics.events),
            codec.decode_envelope, on_loaded=lambda p, s: None,
            claim=lambda p: self.outbox.claim(p, name, claim_value(name, p)),
            snapshots=self.store, on_folded=self._folded)
        self.writer = OrderWriter(self.states, self.outbox,
                                  WriterConfig(ExecutionPolicy(), timedelta(minutes=5)), now)
        self.snapshots = SnapshotWriter(self.states.loaded, self.store,
                                        lambda e, s: codec.encode_event(e, status=s), name,
                                        every_events=1, interval_s=3600)

    def _folded(self, partition: int, states: PartitionStates, last_offset: int) -> None:
        self.checkpoints.seed(partition, states.heads, last_offset,
                              -1 if states.epoch is None else states.epoch, states.terminal)

    def _publish(self, checkpoint: Checkpoint) -> None:
        async def write() -> None:
            await (await self.outbox.checkpoint(checkpoint.partition,
                                                self._checkpoint_value(checkpoint)))
        self.pinned.append(asyncio.ensure_future(write()))


async def test_a_worker_folds_the_tail_after_the_snapshot_and_decides_on(
    provisioned: Settings,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                acks="all")
    await producer.start()
    ended, flying, late = (str(uuid.uuid4()) for _ in range(3))
    try:
        first = Worker(provisioned, producer, "worker-a")
        for order_id in (ended, flying):
            await settled((await first.writer.handle(PARTITION, accepted(order_id))).settled)
        await settled((await first.writer.handle(PARTITION, no_route(ended))).settled)
        assert await first.snapshots.write_due() == 1
        covered = first.snapshots.written[PARTITION].offset
        await settled((await first.writer.handle(PARTITION, accepted(late))).settled)
        await first.store.close()

        second = Worker(provisioned, producer, "worker-b")  # the partition moves
        states = await second.states.ready(PARTITION)
        assert states.snapshot_offset == covered
        assert states.ended(ended) and states.order_ids() == {flying, late}
        assert states.events > 0 and states.end is not None and states.end > covered

        duplicate = await second.writer.handle(PARTITION, accepted(ended))
        goes_on = await second.writer.handle(PARTITION, no_route(flying))
        await settled(goes_on.settled)
    finally:
        await producer.stop()

    assert duplicate.events == ()
    before = first.states.loaded()[PARTITION].orders[flying]
    assert goes_on.events[0].seq == before.seq + 1
    assert states.ended(flying) and flying not in states.orders  # it failed: only its id left


async def test_a_corrupt_snapshot_makes_the_next_worker_fold_the_whole_partition(
    provisioned: Settings,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                acks="all")
    await producer.start()
    orders = [str(uuid.uuid4()) for _ in range(3)]
    try:
        first = Worker(provisioned, producer, "worker-a")
        for order_id in orders:
            await settled((await first.writer.handle(PARTITION, accepted(order_id))).settled)
        await settled((await first.writer.handle(PARTITION, no_route(orders[0]))).settled)
        assert await first.snapshots.write_due() == 1
        await first.store.close()
        restoring = Worker(provisioned, producer, "worker-b")
        intact = await restoring.states.ready(PARTITION)
        await restoring.states.settled()  # its orders in flight, restored behind the takeover
        assert intact.snapshot_offset is not None

        await producer.send_and_wait(provisioned.topics.snapshots, b"\x00\x00\x00\x00\x01junk",
                                     key=str(PARTITION).encode(), partition=PARTITION)
        whole = await Worker(provisioned, producer, "worker-c").states.ready(PARTITION)
    finally:
        await producer.stop()

    assert whole.snapshot_offset is None  # folded from offset 0
    assert whole.orders == intact.orders and whole.ended(orders[0])
    assert set(whole.orders) == set(orders[1:])


async def test_an_order_in_flight_at_a_takeover_from_a_snapshot_chains_on_and_the_log_verifies(
    provisioned: Settings, capsys: pytest.CaptureFixture[str],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                acks="all")
    await producer.start()
    ended, flying = (str(uuid.uuid4()) for _ in range(2))
    try:
        first = Worker(provisioned, producer, "worker-a")
        for order_id in (ended, flying):
            await settled((await first.writer.handle(PARTITION, accepted(order_id))).settled)
        await settled((await first.writer.handle(PARTITION, no_route(ended))).settled)
        assert await first.snapshots.write_due() == 1
        await first.store.close()
        await asyncio.gather(*first.pinned)

        second = Worker(provisioned, producer, "worker-b")  # takes over from the snapshot
        states = await second.states.ready(PARTITION)
        assert states.snapshot_offset is not None and flying in states.order_ids()
        head = states.heads[flying]
        goes_on = await second.writer.handle(PARTITION, no_route(flying))
        await settled(goes_on.settled)
        await asyncio.gather(*second.pinned)
    finally:
        await producer.stop()

    assert head == first.states.loaded()[PARTITION].heads[flying]
    assert len(second.pinned) >= 1  # a checkpoint after the restore, of every order's head
    code, lines = await replay(provisioned, capsys, "--all", "--verify", "--format", "json")
    parsed = [orjson.loads(line) for line in lines]
    broken = [line["broken"] for line in parsed if "broken" in line]
    chain = next(line["chain"] for line in parsed if "chain" in line)
    assert (code, broken) == (0, [])
    assert chain["verified"] and chain["checkpoints"]["mismatched"] == 0
    assert chain["checkpoints"]["checked"] >= 2
