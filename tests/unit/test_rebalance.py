"""A rebalance moves only what it moves (`OrderStates.rebalance`, issue 10 "fast takeover").

The group protocol revokes every partition and assigns them again. A partition the worker keeps
keeps its states (no claim, no fold) unless something was appended to its event store past what
this writer knows of: then another worker owned it meanwhile, and it is claimed and folded anew.
A partition that left is forgotten; one that is new is claimed and folded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import pytest

from domain.orders.events import Event
from domain.orders.state import OrderState
from schemas.codec import Codec
from schemas.writer_fence import claim_headers, epoch_headers
from streams.event_store import StoredRecord
from streams.order_states import OrderStates, PartitionRevoked
from streams.ports import Delivery
from tests.orders_support import WriterStatuses
from tests.unit.test_partition_fold import accepted

CODEC = Codec.load()


@dataclass
class Appended:
    offset: int


@dataclass
class MemoryStore:
    """`orders.events` in memory: a list of records per partition, offsets = positions."""

    topic: str = "orders.events"
    partitions: dict[int, list[StoredRecord]] = field(default_factory=dict)
    reads: list[int] = field(default_factory=list)
    statuses: WriterStatuses = field(default_factory=WriterStatuses)

    def log(self, partition: int) -> list[StoredRecord]:
        return self.partitions.setdefault(partition, [])

    def claim(self, partition: int, who: str = "worker") -> int:
        log = self.log(partition)
        log.append(StoredRecord(len(log), None, who.encode(), tuple(claim_headers(who))))
        return len(log) - 1

    def append(self, partition: int, event: Event, epoch: int) -> int:
        log = self.log(partition)
        value = CODEC.encode_event(event, status=self.statuses.after(event))
        log.append(StoredRecord(len(log), event.order_id.encode(), value,
                                tuple(epoch_headers(epoch))))
        return len(log) - 1

    async def read(self, partition: int, start: int | None,
                   sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> int:
        self.reads.append(partition)
        records = self.log(partition)[start or 0:]
        if records:
            await sink(list(records))
        return len(self.log(partition))

    async def end_offsets(self, partitions: Collection[int]) -> dict[int, int]:
        return {p: len(self.log(p)) for p in partitions}


class Worker:
    """One worker's `OrderStates` over the store, recording what it was told."""

    def __init__(self, store: MemoryStore, name: str = "worker") -> None:
        self.store = store
        self.claims: list[int] = []
        self.loaded: list[tuple[int, list[str]]] = []
        self.dropped: list[set[str]] = []

        async def claim(partition: int) -> int:
            self.claims.append(partition)
            return store.claim(partition, name)

        self.states = OrderStates(store, CODEC.decode_event, on_loaded=self._loaded,
                                  claim=claim, on_dropped=self.dropped.append)

    def _loaded(self, partition: int, states: list[OrderState]) -> None:
        self.loaded.append((partition, sorted(s.order_id for s in states)))

    async def append(self, partition: int, *events: Event) -> None:
        """What the writer does: append with its epoch, and tell the states the offsets."""
        states = await self.states.ready(partition)
        assert states.epoch is not None
        deliveries: list[Delivery] = []
        for event in events:
            delivery: Delivery = asyncio.get_running_loop().create_future()
            delivery.set_result(Appended(self.store.append(partition, event, states.epoch)))
            deliveries.append(delivery)
            states.orders[event.order_id] = OrderState(order_id=event.order_id, seq=event.seq)
        states.appending(deliveries)
        await asyncio.sleep(0)  # the done callbacks run


async def settle(states: OrderStates, *partitions: int) -> None:
    for partition in partitions:
        await asyncio.wait_for(states.ready(partition), timeout=5)


async def test_a_kept_partition_is_neither_claimed_nor_folded_again() -> None:
    store = MemoryStore()
    worker = Worker(store)
    worker.states.rebalance({0, 1})
    await settle(worker.states, 0, 1)
    await worker.append(0, *accepted("a"))
    before = await worker.states.ready(0)

    dropped = worker.states.rebalance({0, 1})  # a rebalance that moved nothing
    await settle(worker.states, 0, 1)

    assert dropped == set() and worker.dropped == []
    assert worker.claims == [0, 1] and sorted(store.reads) == [0, 1]
    assert await worker.states.ready(0) is before and set(before.orders) == {"a"}


async def test_a_partition_that_left_is_forgotten_and_a_new_one_folded() -> None:
    store = MemoryStore()
    worker = Worker(store)
    worker.states.rebalance({0, 1})
    await settle(worker.states, 0, 1)
    await worker.append(1, *accepted("b"))

    dropped = worker.states.rebalance({0, 2})
    await settle(worker.states, 0, 2)

    assert dropped == {"b"} and worker.dropped == [{"b"}]
    assert worker.claims == [0, 1, 2] and sorted(store.reads) == [0, 1, 2]


async def test_a_kept_partition_someone_else_wrote_to_is_claimed_and_folded_anew() -> None:
    store = MemoryStore()
    worker, other = Worker(store, "a"), Worker(store, "b")
    worker.states.rebalance({0})
    await settle(worker.states, 0)
    a1, a2 = accepted("a")
    await worker.append(0, a1)
    # Revoked; the other worker owns the partition for a while and appends ...
    other.states.rebalance({0})
    await settle(other.states, 0)
    await other.append(0, a2)
    # ... and the partition comes back.
    worker.states.rebalance({0})
    states = await asyncio.wait_for(worker.states.ready(0), timeout=5)

    assert worker.claims == [0, 0] and worker.dropped[-1] == {"a"}
    assert states.orders["a"].seq == 2 and states.epoch == len(store.log(0)) - 1
    assert worker.loaded[-1] == (0, ["a"])


async def test_a_zombie_s_own_late_append_does_not_hide_what_its_successor_wrote() -> None:
    """Chaos f: the frozen worker wakes up, appends once more (fenced: its successor claimed
    the partition meanwhile) and gets the partition back. Its last append is the store's end,
    so the end alone looked like "nothing appended since": it kept stale states, and every
    event it appended after that was a deposed writer's, dropped by every reader."""
    store = MemoryStore()
    zombie, successor = Worker(store, "a"), Worker(store, "b")
    zombie.states.rebalance({0})
    await settle(zombie.states, 0)
    a1, a2 = accepted("a")
    await zombie.append(0, a1)
    # Frozen past its session: the successor claims the partition and appends ...
    successor.states.rebalance({0})
    await settle(successor.states, 0)
    b1, _ = accepted("b")
    await successor.append(0, b1)
    # ... the zombie wakes up, appends with its old epoch (the store's end now), and the
    # partition comes back to it.
    await zombie.append(0, a2)
    zombie.states.rebalance({0})
    states = await asyncio.wait_for(zombie.states.ready(0), timeout=5)

    assert zombie.claims == [0, 0], "kept the states of a partition someone else wrote to"
    assert states.epoch == len(store.log(0)) - 1 and "b" in states.orders


async def test_a_kept_partition_whose_append_was_refused_is_folded_anew() -> None:
    store = MemoryStore()
    worker = Worker(store)
    worker.states.rebalance({0})
    states = await asyncio.wait_for(worker.states.ready(0), timeout=5)
    refused: Delivery = asyncio.get_running_loop().create_future()
    states.appending([refused])
    refused.set_exception(ConnectionError("refused by the broker"))
    await asyncio.sleep(0)

    worker.states.rebalance({0})
    again = await asyncio.wait_for(worker.states.ready(0), timeout=5)

    assert again is not states and worker.claims == [0, 0]


async def test_a_kept_partition_waits_for_its_own_appends_in_flight() -> None:
    store = MemoryStore()
    worker = Worker(store)
    worker.states.rebalance({0})
    states = await asyncio.wait_for(worker.states.ready(0), timeout=5)
    in_flight: Delivery = asyncio.get_running_loop().create_future()
    states.appending([in_flight])

    worker.states.rebalance({0})
    assert states.epoch is not None
    a1, _ = accepted("a")
    in_flight.set_result(Appended(store.append(0, a1, states.epoch)))  # lands meanwhile

    assert await asyncio.wait_for(worker.states.ready(0), timeout=5) is states
    assert worker.claims == [0]


async def test_an_append_that_never_settles_makes_the_partition_fold_anew() -> None:
    store = MemoryStore()
    worker = Worker(store)
    worker.states = OrderStates(store, CODEC.decode_event, on_loaded=lambda p, s: None,
                                claim=lambda p: _claimed(store, p), settle_timeout_s=0.05)
    worker.states.rebalance({0})
    states = await asyncio.wait_for(worker.states.ready(0), timeout=5)
    states.appending([asyncio.get_running_loop().create_future()])  # never answered

    worker.states.rebalance({0})

    assert await asyncio.wait_for(worker.states.ready(0), timeout=5) is not states


async def _claimed(store: MemoryStore, partition: int) -> int:
    return store.claim(partition)


class GatedStore(MemoryStore):
    """A store whose reads wait for the test: a fold still running when a rebalance comes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def read(self, partition: int, start: int | None,
                   sink: Callable[[list[StoredRecord]], Awaitable[None]]) -> int:
        await self.gate.wait()
        return await super().read(partition, start, sink)


async def waiting_for_fold(held: set[int], partition: int
                           ) -> tuple[GatedStore, Worker, asyncio.Future[object]]:
    """A worker holding `held` whose folds have not read yet, and a record of `partition`
    already waiting for its states."""
    store = GatedStore()
    worker = Worker(store)
    worker.states.rebalance(held)
    waiting: asyncio.Future[object] = asyncio.ensure_future(worker.states.ready(partition))
    await asyncio.sleep(0)
    return store, worker, waiting


async def test_a_record_waiting_for_a_fold_its_partition_lost_is_told_so_not_cancelled() -> None:
    # A command of partition 2 waited for the first fold when a second worker joined and
    # took partition 2: the cancelled fold raised CancelledError into the writer's agent,
    # Faust logged "Crashed reason=CancelledError()", and every partition of that worker
    # stopped for good (test_200_concurrent_orders timed out).
    store, worker, waiting = await waiting_for_fold({1, 2}, 2)

    worker.states.rebalance({1})
    store.gate.set()

    with pytest.raises(PartitionRevoked):
        await asyncio.wait_for(waiting, timeout=5)
    assert set((await worker.states.ready(1)).orders) == set()


async def test_a_waiter_cancelled_itself_is_still_cancelled() -> None:
    store, worker, waiting = await waiting_for_fold({1}, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    store.gate.set()
    await settle(worker.states, 1)  # the fold itself went on


async def test_a_late_record_of_a_partition_that_left_claims_nothing() -> None:
    # Faust may still hand over a buffered record of a partition the last rebalance took
    # away; folding it "on first touch" claimed the partition and fenced its real owner.
    store = MemoryStore()
    worker = Worker(store)
    worker.states.rebalance({1, 2})
    await settle(worker.states, 1, 2)
    worker.states.rebalance({1})
    with pytest.raises(PartitionRevoked):
        await worker.states.ready(2)
    assert worker.claims == [1, 2]
