"""`decide_parent(state, command) -> events`: the decisions of a parent order (twap, dca).

A parent never swaps. It releases its slices as ordinary market orders (children, ids
`ids.child_id`), one per `SliceDue` timer, and follows them through their writers' reports
(`ChildReport`). `decide` hands it every command of a parent and the `ExecuteOrder` that
creates one; the market order's machine never sees them. Pure, and like `decide` tolerant of
at-least-once delivery: a duplicate `ExecuteOrder`, a timer of a slice already decided, a
report no newer than what the parent knows decide nothing, and nothing is decided after the
parent ended.

- `SliceDue(i)` for the next slice: `SliceReleased` (the writer then sends the child's
  `ExecuteOrder`), or `SliceSkipped` when the parent has price bounds and the price the shell
  observed for the slice's size is outside them (or there was none).
- `ChildReport`: `ChildProgressed`.
- `CancelOrder`: `ParentCancelRequested` (no more slices; the writer cancels the children
  still cancellable), or `ParentCancelled` at once when no child is live.
- When no slice is left to release and every child has ended, the same decision appends the
  parent's end: `ParentCompleted` (`ParentCancelled` after a cancel). A crash between the two
  is finished by the `SliceDue` timer `timers_of` arms for exactly that state.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.orders.commands import (
    CancelOrder,
    ChildReport,
    Command,
    ExecuteOrder,
    SliceDue,
)
from domain.orders.errors import InvalidCommand, InvalidStateTransition
from domain.orders.events import (
    ChildProgressed,
    Event,
    ParentAccepted,
    ParentCancelled,
    ParentCancelRequested,
    ParentCompleted,
    SliceReleased,
    SliceSkipped,
)
from domain.orders.ids import child_id
from domain.orders.parent_evolve import ParentEvent, evolve_parent
from domain.orders.parent_state import ParentProgress
from domain.orders.schedule import schedule
from domain.orders.stamps import Stamper
from domain.orders.state import OrderState, is_terminal
from domain.orders.terms import PARENT_TERMS, ParentTerms
from domain.orders.validation import validate


def opens_parent(command: Command) -> bool:
    """Does `command` create a parent order (an ExecuteOrder of twap or dca terms)?"""
    return isinstance(command, ExecuteOrder) and isinstance(command.terms, PARENT_TERMS)


def decide_parent(state: OrderState, command: Command, *, now: datetime) -> tuple[Event, ...]:
    """The events `command` causes for the parent `state` (often none)."""
    if state.status is None:
        return _accept(state, command, now) if isinstance(command, ExecuteOrder) else ()
    if is_terminal(state):
        return ()
    progress, correlation = state.parent, state.correlation_id
    if progress is None or correlation is None:
        raise InvalidStateTransition(f"order {state.order_id} is not an accepted parent")
    stamp = Stamper(state.order_id, state.seq, now=now, correlation_id=correlation,
                    causation_id=command.command_id)
    match command:
        case SliceDue():
            return _slice_due(state, progress, command, stamp)
        case ChildReport():
            child = progress.child(command.child_id)
            if child is None or command.child_seq <= child.seq:
                return ()  # a duplicate or an older report: the parent knows better already
            return _then_finish(state, stamp, ChildProgressed(
                **stamp(), child_id=command.child_id, child_seq=command.child_seq,
                child_status=command.child_status, amount_out=command.amount_out))
        case CancelOrder():
            if progress.cancel_requested:
                return ()
            if not progress.live_children:
                return (_cancelled(progress, stamp, command.reason),)
            return (ParentCancelRequested(**stamp(), reason=command.reason),)
        case _:
            return ()  # a duplicate ExecuteOrder; a market order's report or timer: no sense


def _accept(state: OrderState, command: Command, now: datetime) -> tuple[Event, ...]:
    assert isinstance(command, ExecuteOrder)
    validate(command)
    terms = command.terms
    if not isinstance(terms, PARENT_TERMS):
        raise InvalidCommand(f"order {state.order_id}: {terms.order_type} is not a parent")
    if command.parent_id is not None:
        raise InvalidCommand(f"order {state.order_id}: a slice cannot be a parent itself")
    stamp = Stamper(state.order_id, state.seq, now=now, correlation_id=command.command_id,
                    causation_id=command.command_id)
    accepted = ParentAccepted(**stamp(), terms=terms, slice_amounts=schedule(terms, now),
                              owner=command.owner)
    # A dca whose endAt leaves no slice (accepted late) ends at once, having spent nothing.
    return _then_finish(state, stamp, accepted)


def _slice_due(state: OrderState, progress: ParentProgress, command: SliceDue,
               stamp: Stamper) -> tuple[Event, ...]:
    if progress.finished:
        return _finish(state, progress, stamp)  # the end of an interrupted decision
    index = command.slice_index
    if progress.scheduled_done or index != progress.next_slice:
        return ()
    amount = progress.slices[index]
    # A price quoted for another size says nothing about this slice's.
    observed = command.observed_price if command.amount_in == amount else None
    problem = _bound_problem(_terms(state), observed)
    if problem is not None:
        return _then_finish(state, stamp, SliceSkipped(
            **stamp(), slice_index=index, amount_in=amount, reason=problem,
            observed_price=observed))
    return _then_finish(state, stamp, SliceReleased(
        **stamp(), slice_index=index, child_id=child_id(state.order_id, index),
        amount_in=amount, observed_price=observed))


def _bound_problem(terms: ParentTerms, observed: Decimal | None) -> str | None:
    low, high = terms.min_slice_price, terms.max_slice_price
    if low is None and high is None:
        return None
    if observed is None:
        return "no_quote"
    if low is not None and observed < low:
        return "price_below_min"
    if high is not None and observed > high:
        return "price_above_max"
    return None


def _then_finish(state: OrderState, stamp: Stamper, event: ParentEvent) -> tuple[Event, ...]:
    """`event`, and the parent's end if nothing is left to happen after it."""
    after = evolve_parent(state, event)
    assert after.parent is not None
    if after.parent.finished:
        return (event, *_finish(after, after.parent, stamp))
    return (event,)


def _finish(state: OrderState, progress: ParentProgress, stamp: Stamper) -> tuple[Event, ...]:
    if progress.cancel_requested:
        return (_cancelled(progress, stamp, state.reason),)
    return (ParentCompleted(**stamp(), amount_in=progress.amount_in_filled,
                            amount_out=progress.amount_out),)


def _cancelled(progress: ParentProgress, stamp: Stamper, reason: str | None) -> ParentCancelled:
    return ParentCancelled(**stamp(), reason=reason, amount_in=progress.amount_in_filled,
                           amount_out=progress.amount_out)


def _terms(state: OrderState) -> ParentTerms:
    terms = state.terms
    if not isinstance(terms, PARENT_TERMS):
        raise InvalidStateTransition(f"parent {state.order_id} has no schedule terms")
    return terms
