"""Which timers an order needs: a function of its folded state alone.

Timers are commands delivered back to the order later (by the order agent's timer wheel): a
`RetryDue` when a backoff ends, a `StallCheck` watchdog whenever the order waits on a stage,
so an order whose stage died in a crash is re-driven instead of hanging forever, and an
`ExpiryDue` at a GTD order's `expires_at` while a cancel could still end it (pending,
waiting, routing). A waiting GTC order has no timer: the market wakes it. A parent order
(twap, dca) has one: `SliceDue` when its next slice is due.
Because they derive from the state, a worker that takes over a partition re-arms every
timer by folding the events (`timers_of`); no timer needs to be durable on its own.
Command ids are deterministic, so arming a timer twice still delivers one logical timer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.orders.commands import ExpiryDue, RetryDue, SliceDue, StallCheck, TimerCommand
from domain.orders.events import Event
from domain.orders.ids import (
    event_id,
    expiry_due_id,
    parent_finish_id,
    retry_due_id,
    slice_due_id,
    stall_check_id,
)
from domain.orders.parent_state import ParentProgress
from domain.orders.schedule import due_at as slice_due_at
from domain.orders.terms import PARENT_TERMS
from domain.orders.state import OrderState, awaits_stage, is_interrupted, is_terminal
from domain.orders.status import CANCELLABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class Timer:
    """Deliver `command` to the order at `due_at`, `delay_ms` after its last event."""

    delay_ms: int
    due_at: datetime
    command: TimerCommand


def timers_after(
    state: OrderState, events: Sequence[Event], *, stall_timeout_ms: int
) -> tuple[Timer, ...]:
    """The timers to arm once `events` are appended; `state` is the state after them.

    No events, no new timers: the ones armed before still stand (a duplicate command must
    not multiply watchdogs)."""
    if not events:
        return ()
    last = events[-1]
    if last.order_id != state.order_id or last.seq != state.seq:
        raise ValueError("timers_after() takes the state after the events were applied")
    return timers_of(state, stall_timeout_ms=stall_timeout_ms)


def timers_of(state: OrderState, *, stall_timeout_ms: int) -> tuple[Timer, ...]:
    """Every timer `state` needs: a `RetryDue` while a backoff runs, a `StallCheck` while
    the order waits on a stage or a crash interrupted its last decision, an `ExpiryDue`
    while a GTD order can still expire; nothing once it is terminal or not accepted."""
    if state.status is None or is_terminal(state) or state.updated_at is None:
        return ()
    if state.parent is not None:
        return _next_slice(state, state.parent, state.updated_at)
    expiry = _expiry(state, state.updated_at)
    return (*_progress(state, state.updated_at, stall_timeout_ms), *expiry)


def _progress(state: OrderState, armed_at: datetime, stall_timeout_ms: int) -> tuple[Timer, ...]:
    """The timer that moves the order on: the end of a backoff, or the watchdog."""
    last_event_id = event_id(state.order_id, state.seq)
    if state.retry_pending is not None and state.retry_at is not None:
        command: TimerCommand = RetryDue(
            command_id=retry_due_id(state.order_id, state.retry_pending),
            order_id=state.order_id,
            issued_at=state.retry_at,
            correlation_id=state.correlation_id,
            causation_id=last_event_id,
            attempt=state.retry_pending,
        )
        return (_timer(armed_at, state.retry_at, command),)
    if awaits_stage(state) or is_interrupted(state):
        due_at = armed_at + timedelta(milliseconds=stall_timeout_ms)
        command = StallCheck(
            command_id=stall_check_id(state.order_id, state.seq),
            order_id=state.order_id,
            issued_at=due_at,
            correlation_id=state.correlation_id,
            causation_id=last_event_id,
            stalled_seq=state.seq,
        )
        return (_timer(armed_at, due_at, command),)
    return ()


def _expiry(state: OrderState, armed_at: datetime) -> tuple[Timer, ...]:
    expires_at = state.terms.deadline if state.terms is not None else None
    if expires_at is None or state.status not in CANCELLABLE:
        return ()
    command = ExpiryDue(
        command_id=expiry_due_id(state.order_id),
        order_id=state.order_id,
        issued_at=expires_at,
        correlation_id=state.correlation_id,
        causation_id=event_id(state.order_id, state.seq),
        expires_at=expires_at,
    )
    return (_timer(armed_at, expires_at, command),)


def _next_slice(state: OrderState, progress: ParentProgress,
                armed_at: datetime) -> tuple[Timer, ...]:
    """A parent's one timer: its next slice when it is due; at once when nothing is left to
    happen but its end was not appended (a crash cut the decision short); none while it
    only waits for its children."""
    terms = state.terms
    assert isinstance(terms, PARENT_TERMS), "a parent has schedule terms"
    index = progress.next_slice
    if progress.finished:
        due_at, command_id, amount = armed_at, parent_finish_id(state.order_id, state.seq), 0
    elif progress.scheduled_done:
        return ()
    else:
        due_at = slice_due_at(progress.started_at, terms.interval_s, index)
        command_id, amount = slice_due_id(state.order_id, index), progress.slices[index]
    bounded = terms.min_slice_price is not None or terms.max_slice_price is not None
    command = SliceDue(
        command_id=command_id,
        order_id=state.order_id,
        issued_at=due_at,
        correlation_id=state.correlation_id,
        causation_id=event_id(state.order_id, state.seq),
        slice_index=index,
        token_in=terms.token_in,
        token_out=terms.token_out,
        amount_in=amount,
        needs_price=bounded and amount > 0,
    )
    return (_timer(armed_at, due_at, command),)


def _timer(armed_at: datetime, due_at: datetime, command: TimerCommand) -> Timer:
    delay_ms = (due_at - armed_at) // timedelta(milliseconds=1)
    return Timer(delay_ms=delay_ms, due_at=due_at, command=command)
