"""The order writer with a parent order (twap): the child's ExecuteOrder and the child's report
leave only once the events that call for them are durable; a timer's SliceDue is priced by the
shell as it fires; a fold re-sends what a crash may have left unsent."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from domain.orders.commands import ChildReport, Command, ExecuteOrder, SliceDue
from domain.orders.decide import ExecutionPolicy
from domain.orders.events import ParentAccepted, SliceReleased
from domain.orders.ids import child_id
from domain.orders.terms import TwapTerms
from domain.tokens import SOL, USDC
from streams.order_agent import OrderWriter, WriterConfig
from tests.unit.stream_fakes import T0, FakeClock, FakeOutbox, FakeStates

CONFIG = WriterConfig(ExecutionPolicy(), timedelta(seconds=15))
TERMS = TwapTerms(token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
                  token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
                  amount_in=3 * 10**9, slippage_bps=50, slices=3, interval_s=5,
                  min_slice_price=Decimal("1"))


def place(order_id: str = "p-1") -> ExecuteOrder:
    return ExecuteOrder(command_id=f"cmd-{order_id}", order_id=order_id, issued_at=T0,
                        terms=TERMS, owner="key-1")


def priced(command: Command) -> Command:
    return replace(command, observed_price=Decimal("150")) if isinstance(command, SliceDue) \
        else command


async def test_a_released_slice_is_sent_as_its_childs_order_once_durable() -> None:
    outbox, clock = FakeOutbox(ack_manually=True), FakeClock()
    writer = OrderWriter(FakeStates(), outbox, CONFIG, clock, before_fire=priced)
    accepted = await writer.handle(0, place())
    assert [type(e) for e in accepted.events] == [ParentAccepted]
    outbox.settle_all()
    outbox.ack_manually = False  # the timer's own command is acknowledged at once
    fired = await writer.timers.fire_due()  # slice 0 is due at once, priced as it fires
    outbox.ack_manually = True
    (due,) = [c for c in outbox.of("command") if isinstance(c, SliceDue)]
    assert due.slice_index == 0 and due.observed_price == Decimal("150") and len(fired) == 1

    released = await writer.handle(0, due)
    assert [type(e) for e in released.events] == [SliceReleased]
    assert not [c for c in outbox.of("command") if isinstance(c, ExecuteOrder)]  # not yet
    outbox.settle_all()
    for _ in range(20):
        await asyncio.sleep(0)
        outbox.settle_all()
    assert released.settled is not None and released.settled.done()
    (child_order,) = [c for c in outbox.of("command") if isinstance(c, ExecuteOrder)]
    assert child_order.order_id == child_id("p-1", 0) and child_order.parent_id == "p-1"

    # The child, decided by a writer (here the same one), reports to its parent.
    child = await writer.handle(1, child_order)
    outbox.settle_all()
    for _ in range(20):
        await asyncio.sleep(0)
        outbox.settle_all()
    assert child.settled is not None and child.settled.done()
    (report,) = [c for c in outbox.of("command") if isinstance(c, ChildReport)]
    assert (report.order_id, report.child_id, report.child_seq) == ("p-1", child_order.order_id,
                                                                    2)


async def test_a_fold_resends_the_order_of_a_slice_that_never_reported() -> None:
    outbox, states = FakeOutbox(), FakeStates()
    writer = OrderWriter(states, outbox, CONFIG, FakeClock(), before_fire=priced)
    await writer.handle(0, place())
    due = SliceDue(command_id="d0", order_id="p-1", issued_at=T0, slice_index=0,
                   token_in=SOL.mint, token_out=USDC.mint, amount_in=10**9,
                   observed_price=Decimal("150"))
    released = await writer.handle(0, due)
    assert released.settled is not None
    await released.settled
    before = len(outbox.of("command"))
    # A worker folding the partition anew (after a crash) sees the parent as it is now.
    writer.on_loaded(0, [(await states.ready(0)).orders["p-1"]])
    for _ in range(20):
        await asyncio.sleep(0)
    resent = outbox.of("command")[before:]
    assert [c.order_id for c in resent if isinstance(c, ExecuteOrder)] == [child_id("p-1", 0)]
