"""`evolve_parent(state, event) -> state`: fold one event of a parent order (twap, dca).

A parent's lifecycle is short and its own: `ParentAccepted` makes it `waiting` (it works
through its schedule), slices and its children's progress leave it there, and it ends
`confirmed` (some slice filled) or `failed` (none did) with `ParentCompleted`, or `cancelled`
with `ParentCancelled`. The market order's transition table is not involved: a parent's
events never reach it (`evolve` hands them here). Like `evolve`, every event is checked
against the status, the next `seq` and the parent's own books, so a writer bug fails fast.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from domain.orders.amounts import executed_price
from domain.orders.errors import InvalidStateTransition, OrderMismatch, SequenceGap
from domain.orders.events import (
    ChildProgressed,
    ParentAccepted,
    ParentCancelled,
    ParentCancelRequested,
    ParentCompleted,
    SliceReleased,
    SliceSkipped,
)
from domain.orders.parent_state import ChildView, ParentProgress
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus

ParentEvent = (ParentAccepted | SliceReleased | SliceSkipped | ChildProgressed
               | ParentCancelRequested | ParentCompleted | ParentCancelled)


def evolve_parent(state: OrderState, event: ParentEvent) -> OrderState:
    """The parent's state after `event`; raises `InvalidStateTransition` (or `SequenceGap`)."""
    if event.order_id != state.order_id:
        raise OrderMismatch(f"event for order {event.order_id} applied to {state.order_id}")
    if event.seq != state.seq + 1:
        raise SequenceGap(state.order_id, state.seq + 1, event.seq)
    if isinstance(event, ParentAccepted):
        if state.status is not None:
            raise _illegal(state, event)
        accepted = replace(state, terms=event.terms, owner=event.owner,
                           correlation_id=event.correlation_id,
                           parent=ParentProgress(slices=event.slice_amounts,
                                                 started_at=event.occurred_at))
        return _moved(accepted, event, OrderStatus.WAITING)
    progress = state.parent
    if progress is None or state.status is not OrderStatus.WAITING:
        raise _illegal(state, event)
    return _moved(_fold(state, progress, event), event, _status_after(event))


def _fold(state: OrderState, progress: ParentProgress, event: ParentEvent) -> OrderState:
    match event:
        case SliceReleased():
            _check_next(state, progress, event.slice_index)
            child = ChildView(child_id=event.child_id, slice_index=event.slice_index,
                              amount_in=event.amount_in)
            return _with(state, replace(progress, released=progress.released + 1,
                                        children=(*progress.children, child)))
        case SliceSkipped():
            _check_next(state, progress, event.slice_index)
            return _with(state, replace(progress, skipped=progress.skipped + 1))
        case ChildProgressed():
            return _with(state, _child_progressed(state, progress, event))
        case ParentCancelRequested():
            return replace(_with(state, replace(progress, cancel_requested=True)),
                           reason=event.reason)
        case ParentCompleted():
            if event.amount_in > 0:
                return _filled(state, event.amount_in, event.amount_out)
            return replace(state, reason_code="nothing_filled",
                           reason="no slice was filled (all skipped or failed)")
        case ParentCancelled():
            return replace(_filled(state, event.amount_in, event.amount_out),
                           reason=event.reason)
        case ParentAccepted():
            raise _illegal(state, event)
        case _:
            assert_never(event)


def _status_after(event: ParentEvent) -> OrderStatus:
    if isinstance(event, ParentCompleted):
        return OrderStatus.CONFIRMED if event.amount_in > 0 else OrderStatus.FAILED
    if isinstance(event, ParentCancelled):
        return OrderStatus.CANCELLED
    return OrderStatus.WAITING


def _child_progressed(state: OrderState, progress: ParentProgress,
                      event: ChildProgressed) -> ParentProgress:
    child = progress.child(event.child_id)
    if child is None or event.child_seq <= child.seq:
        raise InvalidStateTransition(
            f"parent {state.order_id}: ChildProgressed of {event.child_id} at seq "
            f"{event.child_seq} (released: {child is not None}, known seq "
            f"{child.seq if child else None})")
    updated = replace(child, seq=event.child_seq, status=event.child_status,
                      amount_out=event.amount_out)
    children = tuple(updated if c.child_id == child.child_id else c for c in progress.children)
    return replace(progress, children=children)


def _filled(state: OrderState, amount_in: int, amount_out: int) -> OrderState:
    terms = state.terms
    if amount_in <= 0 or terms is None:
        return replace(state, amount_out=amount_out)
    price = executed_price(amount_in, amount_out, decimals_in=terms.token_in_decimals,
                           decimals_out=terms.token_out_decimals)
    return replace(state, amount_out=amount_out, executed_price=price)


def _check_next(state: OrderState, progress: ParentProgress, index: int) -> None:
    if index != progress.next_slice or progress.scheduled_done:
        raise InvalidStateTransition(
            f"parent {state.order_id}: slice {index} decided, the next is "
            f"{progress.next_slice} of {len(progress.slices)}")


def _with(state: OrderState, progress: ParentProgress) -> OrderState:
    return replace(state, parent=progress)


def _moved(state: OrderState, event: ParentEvent, status: OrderStatus) -> OrderState:
    history = state.status_history
    if status is not state.status:
        history = (*history, (status, event.occurred_at))
    return replace(state, status=status, seq=event.seq, updated_at=event.occurred_at,
                   status_history=history)


def _illegal(state: OrderState, event: ParentEvent) -> InvalidStateTransition:
    return InvalidStateTransition(
        f"{type(event).__name__} is not allowed in status {state.status or 'not accepted'}"
        f"{'' if state.parent is not None or state.status is None else ' (not a parent)'}")
