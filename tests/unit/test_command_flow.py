"""Acks after durable outputs, and the rewind of a partition whose outputs were refused."""

from __future__ import annotations

import asyncio
import gc

from datetime import timedelta

from domain.orders.commands import Command
from domain.orders.decide import ExecutionPolicy
from domain.orders.events import Event
from streams.acks import AckChain
from streams.command_flow import CommandFlow, Inbound
from streams.order_agent import OrderWriter, WriterConfig
from streams.order_states import PartitionRevoked, PartitionStates
from streams.ports import Delivery
from tests.harness import wait_until
from tests.unit.stream_fakes import FakeClock, FakeOutbox, FakeStates, execute_order
from tests.unit.test_order_writer import route_found, run_pending

P = 7


def future() -> Delivery:
    return asyncio.get_running_loop().create_future()


async def test_the_chain_acks_in_offset_order_and_stops_at_the_first_failure() -> None:
    acked: list[int] = []
    failures: list[tuple[int, int]] = []
    chain = AckChain(lambda p, offset, error: failures.append((p, offset)))
    outcomes = [future() for _ in range(4)]
    for offset, outcome in enumerate(outcomes):
        chain.track(P, offset, outcome, lambda offset=offset: acked.append(offset))  # type: ignore[misc]

    outcomes[1].set_result(None)
    await run_pending()
    assert acked == []  # 1 is durable, but 0 is not yet
    outcomes[0].set_result(None)
    await run_pending()
    assert acked == [0, 1]
    outcomes[3].set_result(None)
    outcomes[2].set_exception(ConnectionError("refused"))
    await run_pending()
    assert acked == [0, 1] and failures == [(P, 2)]  # never past the failure
    assert chain.reset(P) == []


class Flow:
    def __init__(self, outbox: FakeOutbox) -> None:
        self.outbox, self.states = outbox, FakeStates()
        self.writer = OrderWriter(self.states, outbox,
                                  WriterConfig(ExecutionPolicy(), timedelta(seconds=15)),
                                  FakeClock())
        self.acked: list[int] = []
        self.seeks: list[tuple[int, int]] = []
        self.forgotten: set[str] = set()
        self.dead: list[BaseException] = []
        self.flow = CommandFlow(self.writer, self._seek, self.forgotten.update,
                                first_backoff_s=0)

    async def _seek(self, partition: int, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def _dead_letter(self, error: BaseException) -> Delivery:
        self.dead.append(error)
        return await self.outbox.command(execute_order("dead-letter"))

    def record(self, offset: int) -> Inbound:
        return Inbound(P, offset, lambda: self.acked.append(offset), self._dead_letter)

    def events(self, order_id: str) -> list[Event]:
        return [e for e in self.outbox.of("events") if e.order_id == order_id]


async def test_a_record_is_acked_once_its_outputs_are_durable_and_not_before() -> None:
    f = Flow(FakeOutbox(ack_manually=True))

    await f.flow.receive(f.record(0), execute_order("o-2"))
    await f.flow.receive(f.record(1), execute_order("o-1"))
    # A duplicate of o-1 is decided only once o-1's last decision is stored.
    duplicate = asyncio.create_task(f.flow.receive(f.record(2), execute_order("o-1")))
    await run_pending()
    assert f.acked == [] and not duplicate.done()
    for sent in f.outbox.sent:
        if sent.kind == "events" and sent.value.order_id == "o-1":
            sent.delivery.set_result(None)
    await run_pending()
    f.outbox.settle_all()  # o-1's work item, handed on after its events
    await duplicate
    await run_pending()
    assert f.acked == []  # o-2 (offset 0) is not durable yet
    f.outbox.settle_all()
    await run_pending()
    f.outbox.settle_all()
    await wait_until(lambda: f.acked == [0, 1, 2], 2, "the records acked in order")


async def test_an_undecodable_record_is_dead_lettered_and_acked_in_its_turn() -> None:
    f = Flow(FakeOutbox())

    await f.flow.receive(f.record(0), ValueError("not a command"))
    await f.flow.receive(f.record(1), execute_order("o-1"))

    await wait_until(lambda: f.acked == [0, 1], 2, "both records acked")
    assert [str(e) for e in f.dead] == ["not a command"]


async def test_a_refused_delivery_rewinds_its_partition_and_its_command_is_decided_again(
) -> None:
    f = Flow(FakeOutbox(reject_next=2))  # the broker refuses o-1's first two events
    await f.flow.receive(f.record(5), execute_order("o-1"))
    await f.flow.receive(f.record(6), execute_order("o-2"))  # lands
    landed = f.states.partitions[P].orders["o-2"]
    f.states.stored[P] = PartitionStates(orders={"o-2": landed})  # what the store holds
    await f.flow.receive(f.record(7), route_found("o-1"))  # must not build on o-1's lost seq

    await wait_until(lambda: f.seeks == [(P, 5)], 2, "the rewind to the refused record")
    await f.flow.receive(f.record(8), route_found("o-2"))  # buffered before the rewind: skipped
    # ... and, delivered after the seek, it moved Faust's read offset past 5 again (Faust
    # drops a record below its read offset): the flow seeks once more.
    await wait_until(lambda: f.seeks == [(P, 5), (P, 5)], 2, "a second seek to the record")
    assert f.acked == [] and f.states.reloads == [P]
    assert {"o-1", "o-2"} <= f.forgotten
    assert [e.seq for e in f.events("o-1")] == [1, 2]  # nothing on top of the lost events
    assert f.flow.stats.skipped == 1

    again: list[tuple[int, Command]] = [(5, execute_order("o-1")), (6, execute_order("o-2")),
                                        (7, route_found("o-1")), (8, route_found("o-2"))]
    for offset, command in again:
        await f.flow.receive(f.record(offset), command)  # consumed again from the rewind

    await wait_until(lambda: f.acked == [5, 6, 7, 8], 2, "every record acked, in order")
    assert [e.seq for e in f.events("o-1")] == [1, 2, 1, 2, 3, 4]
    assert [e.seq for e in f.events("o-2")] == [1, 2, 3, 4]  # o-2 decided once each



async def test_an_event_store_that_cannot_enqueue_rewinds_and_never_dead_letters_the_command(
) -> None:
    # A producer that raises on send (stopped, or its buffer full during a broker outage)
    # says nothing about the command: the command must be decided again, not parked.
    f = Flow(FakeOutbox(fail_next=1))
    await f.flow.receive(f.record(3), execute_order("o-1"))

    await wait_until(lambda: f.seeks == [(P, 3)], 2, "the rewind to the record")
    assert f.dead == [] and f.acked == []
    await f.flow.receive(f.record(3), execute_order("o-1"))  # consumed again
    await wait_until(lambda: f.acked == [3], 2, "acked once its events are stored")
    assert [e.seq for e in f.events("o-1")] == [1, 2]


async def test_failed_outcomes_behind_a_stopped_partition_are_not_reported_as_unretrieved(
) -> None:
    # Behind the first failure nobody asks the later outcomes: asyncio then logs each as
    # "Future exception was never retrieved", noise that buries the real error.
    unretrieved: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context["message"]))
    try:
        chain = AckChain(lambda p, offset, error: None)
        first, second = future(), future()
        chain.track(P, 0, first, lambda: None)
        chain.track(P, 1, second, lambda: None)
        first.set_exception(ConnectionError("refused"))
        second.set_exception(ConnectionError("refused as well"))
        await run_pending()
        chain.reset(P)
        del first, second
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert unretrieved == []


async def test_a_record_whose_partition_left_during_its_fold_is_neither_acked_nor_dead_lettered(
) -> None:
    # Its new owner consumes it again from the committed offset; dead-lettering it would lose
    # a valid command, and letting the error escape would kill the writer's Faust agent.
    f = Flow(FakeOutbox())

    async def revoked(partition: int) -> PartitionStates:
        raise PartitionRevoked(partition)

    f.states.ready = revoked  # type: ignore[method-assign]
    await f.flow.receive(f.record(0), execute_order("o-1"))
    await run_pending()
    assert f.acked == [] and f.dead == [] and f.outbox.of("events") == []
    assert f.flow.waiting(P) == 0
