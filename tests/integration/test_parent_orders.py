"""Twap parent orders end to end (real Kafka, PostgreSQL, worker processes, the edge and an
in-process projector): slices released over time as ordinary market orders, the parent's
progress in the read model, a cancel mid-way, slices skipped by their price bounds, and a
worker killed between two slices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from domain.orders.events import (
    ChildProgressed,
    Event,
    OrderAccepted,
    OrderConfirmed,
    ParentAccepted,
    ParentCancelled,
    ParentCancelRequested,
    ParentCompleted,
    SliceReleased,
    SliceSkipped,
)
from domain.orders.ids import child_id
from domain.orders.status import OrderStatus
from oee.settings import Settings
from tests.harness import (
    EventLog,
    WorkerProcess,
    assert_one_clean_history,
    edge,
    wait_until,
    wait_until_async,
    workers,
)
from tests.integration.conditional_support import of_type, place
from tests.integration.test_sniper_and_cancel import projector

TWAP: dict[str, object] = {"orderType": "twap", "tokenIn": "SOL", "tokenOut": "USDC",
                           "amountIn": "0.3", "slices": 3, "intervalS": 1, "slippageBps": 300}


def released(log: EventLog, parent: str) -> list[SliceReleased]:
    return [e for e in of_type(log, parent, SliceReleased) if isinstance(e, SliceReleased)]


def accepted(log: EventLog, order_id: str) -> list[Event]:
    return of_type(log, order_id, OrderAccepted)


def ended(log: EventLog, order_id: str) -> bool:
    return log.terminal(order_id) is not None


async def view_of(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/orders/{order_id}")
    return dict(response.json()) if response.status_code == 200 else {}


def assert_children_clean(log: EventLog, parent: str, slices: list[SliceReleased]) -> None:
    for index, slice_ in enumerate(slices):
        assert slice_.slice_index == index and slice_.child_id == child_id(parent, index)
        (child_accepted,) = accepted(log, slice_.child_id)
        assert isinstance(child_accepted, OrderAccepted)
        assert child_accepted.parent_id == parent
        assert child_accepted.terms.amount_in == slice_.amount_in
        assert_one_clean_history(log, slice_.child_id)


async def test_a_twap_of_three_slices_completes_with_its_progress(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, projector(provisioned), \
            edge(provisioned) as client:
        parent = await place(client, TWAP)
        await wait_until(lambda: ended(log, parent), 90, "the twap to complete")

        async def projected() -> bool:
            return (await view_of(client, parent)).get("status") == "confirmed"

        await wait_until_async(projected, 30, "the read model to show it")
        view = await view_of(client, parent)
        trail = (await client.get(f"/api/orders/{parent}/events")).json()

    slices = released(log, parent)
    assert len(slices) == 3
    assert_children_clean(log, parent, slices)
    assert_one_clean_history(log, parent)
    (start,) = of_type(log, parent, ParentAccepted)
    for slice_ in slices:  # one every intervalS, the first at once
        assert slice_.occurred_at >= start.occurred_at + timedelta(seconds=slice_.slice_index)
    outs = []
    for slice_ in slices:
        confirmed = log.terminal(slice_.child_id)
        assert isinstance(confirmed, OrderConfirmed)
        outs.append(confirmed.amount_out)
        heard = [e for e in of_type(log, parent, ChildProgressed)
                 if isinstance(e, ChildProgressed) and e.child_id == slice_.child_id]
        assert heard and heard[-1].child_status is OrderStatus.CONFIRMED
    completed = log.terminal(parent)
    assert isinstance(completed, ParentCompleted)
    assert (completed.amount_in, completed.amount_out) == (3 * 10**8, sum(outs))
    assert log.statuses[parent][-1] is OrderStatus.CONFIRMED

    progress = view["progress"]
    assert (progress["slices"], progress["released"], progress["skipped"],
            progress["remaining"], progress["filled"]) == (3, 3, 0, 0, 3)
    assert (progress["amountInFilled"], progress["amountOut"]) == (str(3 * 10**8),
                                                                   str(sum(outs)))
    assert progress["averagePrice"] is not None
    assert {c["childId"] for c in progress["children"]} == {s.child_id for s in slices}
    # The parent's own history, as its WebSocket replays it: one gapless seq.
    seqs = [event["seq"] for event in trail["events"]]
    assert seqs == list(range(1, len(log.by_order[parent]) + 1))


async def test_a_cancelled_twap_releases_no_more_slices(provisioned: Settings) -> None:
    slow = {**TWAP, "intervalS": 6}
    async with workers(provisioned), EventLog(provisioned) as log, projector(provisioned), \
            edge(provisioned) as client:
        parent = await place(client, slow)
        first = child_id(parent, 0)
        await wait_until(lambda: ended(log, first), 60, "the first slice to execute")

        async def waiting() -> bool:
            return (await view_of(client, parent)).get("status") == "waiting"

        await wait_until_async(waiting, 30, "the read model to know the parent")
        answer = await client.post(f"/api/orders/{parent}/cancel", json={"reason": "enough"})
        assert answer.status_code == 202, answer.text
        await wait_until(lambda: ended(log, parent), 60, "the parent to be cancelled")
        slices = released(log, parent)
        await wait_until(lambda: log.all_terminal(s.child_id for s in slices), 60,
                         "its children to end")

    cancelled = log.terminal(parent)
    assert isinstance(cancelled, ParentCancelled) and cancelled.reason == "enough"
    assert 1 <= len(slices) < 3
    stop = next(e for e in log.by_order[parent]
                if isinstance(e, ParentCancelRequested | ParentCancelled))
    assert all(s.seq < stop.seq for s in slices)  # nothing released after the cancel
    assert_children_clean(log, parent, slices)
    assert_one_clean_history(log, parent)
    assert log.statuses[parent][-1] is OrderStatus.CANCELLED


async def test_slices_outside_the_price_bounds_are_skipped(provisioned: Settings) -> None:
    # SOL trades near 150 USDC in the seed market: no slice fetches a million.
    never = {**TWAP, "slices": 2, "minSlicePrice": "1000000"}
    always = {**TWAP, "slices": 2, "minSlicePrice": "0.001", "maxSlicePrice": "1000000"}
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        skipped_parent = await place(client, never)
        bounded_parent = await place(client, always)
        await wait_until(lambda: log.all_terminal([skipped_parent, bounded_parent]), 90,
                         "both parents to end")

    skips = [e for e in of_type(log, skipped_parent, SliceSkipped) if isinstance(e, SliceSkipped)]
    assert [(s.slice_index, s.reason) for s in skips] == [(0, "price_below_min"),
                                                          (1, "price_below_min")]
    assert all(s.observed_price is not None and s.observed_price < 1000 for s in skips)
    assert released(log, skipped_parent) == []
    assert log.statuses[skipped_parent][-1] is OrderStatus.FAILED
    assert_one_clean_history(log, skipped_parent)
    inside = released(log, bounded_parent)
    assert len(inside) == 2 and all(s.observed_price is not None for s in inside)
    assert isinstance(log.terminal(bounded_parent), ParentCompleted)


async def test_a_worker_killed_between_slices_releases_the_rest_exactly_once(
    provisioned: Settings,
) -> None:
    slow = {**TWAP, "intervalS": 5}
    async with EventLog(provisioned) as log, edge(provisioned) as client:
        first_worker = WorkerProcess(provisioned, "before").start()
        try:
            parent = await place(client, slow)
            await wait_until(lambda: ended(log, child_id(parent, 0)), 60, "the first slice")
            first_worker.kill()
            assert len(released(log, parent)) < 3  # the kill came between two slices
        finally:
            first_worker.kill()
        async with workers(provisioned):
            await wait_until(lambda: ended(log, parent), 120, "the twap to complete")
            slices = released(log, parent)
            await wait_until(lambda: log.all_terminal(s.child_id for s in slices), 60,
                             "its children")

    assert [s.slice_index for s in slices] == [0, 1, 2]
    assert_children_clean(log, parent, slices)
    assert_one_clean_history(log, parent)
    assert isinstance(log.terminal(parent), ParentCompleted)
