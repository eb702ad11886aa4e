"""The writer's hand-over to its own stage (streams.local_handoff): each work item runs once,
whichever of the broker's answer and the record's fetch comes first."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from domain.tokens import SOL, USDC
from domain.work import QuoteRoute, Work
from streams.local_handoff import HandingOutbox, LocalStages
from streams.ports import Delivery
from tests.unit.stream_fakes import FakeOutbox

ROUTING = ("orders.routing", 3)


@dataclass(frozen=True)
class Metadata:
    """The part of aiokafka's RecordMetadata the hand-over reads."""

    topic: str
    partition: int
    offset: int


class Stage:
    """Starts a task per item that ends when the test says so."""

    def __init__(self) -> None:
        self.started: list[Work] = []
        self.finish: asyncio.Future[None] | None = None

    async def start(self, item: Work) -> Delivery:
        self.started.append(item)
        self.finish = asyncio.get_running_loop().create_future()
        return asyncio.ensure_future(self._run(self.finish))

    @staticmethod
    async def _run(finish: asyncio.Future[None]) -> None:
        await finish


def quote(order_id: str = "o-1") -> QuoteRoute:
    return QuoteRoute(order_id=order_id, attempt=1, token_in=SOL.mint, token_out=USDC.mint,
                      amount_in=1_000_000)


def acked_by_hand() -> tuple[Stage, LocalStages, FakeOutbox, HandingOutbox]:
    """A writer's outbox over a stage owning ROUTING, whose deliveries the test answers."""
    stage = Stage()
    local = owning(stage)
    outbox = FakeOutbox(ack_manually=True)
    return stage, local, outbox, HandingOutbox(outbox, local)


def owning(stage: Stage, *sources: tuple[str, int]) -> LocalStages:
    local = LocalStages(stage.start)
    local.assigned(sources or (ROUTING,))
    return local


async def test_an_item_answered_first_starts_here_once_and_its_record_claims_that_task() -> None:
    stage = Stage()
    local = owning(stage)
    assert local.reserve(quote())

    await local.hand(quote(), Metadata(*ROUTING, offset=7))
    claimed = local.claim(quote())

    assert stage.started == [quote()]
    assert claimed is not None and not claimed.done()
    assert stage.finish is not None
    stage.finish.set_result(None)
    await asyncio.wait_for(claimed, 1)  # the record is acked once the task ended
    assert local.claim(quote()) is None  # a second copy of the record starts it as usual
    assert len(local) == 0


async def test_a_record_consumed_before_the_answer_keeps_the_item_from_starting_twice() -> None:
    stage = Stage()
    local = owning(stage)
    local.reserve(quote())

    assert local.claim(quote()) is None  # the stage starts on the record itself
    await local.hand(quote(), Metadata(*ROUTING, offset=7))

    assert stage.started == []
    assert len(local) == 0


async def test_an_item_whose_record_landed_on_another_workers_partition_is_not_started() -> None:
    stage = Stage()
    local = owning(stage, ("orders.routing", 0))
    local.reserve(quote())

    await local.hand(quote(), Metadata(*ROUTING, offset=7))

    assert stage.started == [] and local.claim(quote()) is None and len(local) == 0


async def test_nothing_is_handed_over_between_a_revocation_and_the_next_assignment() -> None:
    stage = Stage()
    local = owning(stage)
    local.revoked()
    local.reserve(quote())

    await local.hand(quote(), Metadata(*ROUTING, offset=7))

    assert stage.started == []


async def test_a_started_task_whose_partition_moved_away_is_forgotten() -> None:
    stage = Stage()
    local = owning(stage)
    local.reserve(quote())
    await local.hand(quote(), Metadata(*ROUTING, offset=7))

    local.revoked()
    local.assigned([("orders.routing", 0)])

    assert local.claim(quote()) is None and len(local) == 0


async def test_a_failed_delivery_starts_nothing_and_leaves_nothing_behind() -> None:
    stage = Stage()
    local = owning(stage)
    outbox = FakeOutbox(reject_next=1)
    handing = HandingOutbox(outbox, local)

    delivery = await handing.work(quote())

    await asyncio.wait([delivery], timeout=1)
    assert isinstance(delivery.exception(), ConnectionError)
    assert stage.started == [] and len(local) == 0


async def test_an_item_not_even_enqueued_leaves_nothing_behind() -> None:
    local = owning(Stage())
    handing = HandingOutbox(FakeOutbox(fail_next=1), local)

    try:
        await handing.work(quote())
    except ConnectionError:
        pass
    else:
        raise AssertionError("the enqueue failure must reach the writer")
    assert len(local) == 0


async def test_the_writers_delivery_resolves_once_the_local_stage_has_started() -> None:
    stage, local, outbox, handing = acked_by_hand()

    delivery = await handing.work(quote())
    await asyncio.sleep(0)
    assert not delivery.done() and stage.started == []  # not before the broker's answer
    (sent,) = outbox.sent
    sent.delivery.set_result(Metadata(*ROUTING, offset=7))
    await asyncio.wait_for(delivery, 1)

    assert stage.started == [quote()]
    assert local.claim(quote()) is not None


async def test_an_equal_item_already_on_its_way_takes_the_ordinary_path() -> None:
    stage, local, outbox, handing = acked_by_hand()

    first = await handing.work(quote())
    second = await handing.work(quote())  # e.g. a re-drive of the same attempt
    for sent, offset in zip(outbox.sent, (7, 8), strict=True):
        sent.delivery.set_result(Metadata(*ROUTING, offset=offset))
    await asyncio.wait_for(asyncio.gather(first, second), 1)

    assert stage.started == [quote()]  # the second record starts its own task when consumed


async def test_an_item_the_stage_could_not_start_is_left_to_its_record() -> None:
    async def refuse(item: Work) -> Delivery:
        raise RuntimeError("no slot")

    local = LocalStages(refuse)
    local.assigned([ROUTING])
    local.reserve(quote())

    await local.hand(quote(), Metadata(*ROUTING, offset=7))

    assert local.claim(quote()) is None and len(local) == 0  # the record starts it as usual
