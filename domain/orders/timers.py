"""Which timers an order needs: a function of its folded state alone.

Timers are commands delivered back to the order later (through the delay tiers): a
`RetryDue` when a backoff ends, and a `StallCheck` watchdog whenever the order waits on a
stage, so an order whose stage died in a crash is re-driven instead of hanging forever.
Because they derive from the state, a worker that takes over a partition re-arms every
timer by folding the events (`timers_of`); no timer needs to be durable on its own.
Command ids are deterministic, so arming a timer twice still delivers one logical timer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.orders.commands import RetryDue, StallCheck
from domain.orders.events import Event
from domain.orders.ids import event_id, retry_due_id, stall_check_id
from domain.orders.state import OrderState, awaits_stage, is_interrupted, is_terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class Timer:
    """Deliver `command` to the order at `due_at`, `delay_ms` after its last event."""

    delay_ms: int
    due_at: datetime
    command: RetryDue | StallCheck


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
    the order waits on a stage or a crash interrupted its last decision, nothing once it is
    terminal or not accepted."""
    if state.status is None or is_terminal(state) or state.updated_at is None:
        return ()
    last_event_id = event_id(state.order_id, state.seq)
    if state.retry_pending is not None and state.retry_at is not None:
        command: RetryDue | StallCheck = RetryDue(
            command_id=retry_due_id(state.order_id, state.retry_pending),
            order_id=state.order_id,
            issued_at=state.retry_at,
            correlation_id=state.correlation_id,
            causation_id=last_event_id,
            attempt=state.retry_pending,
        )
        return (_timer(state.updated_at, state.retry_at, command),)
    if awaits_stage(state) or is_interrupted(state):
        due_at = state.updated_at + timedelta(milliseconds=stall_timeout_ms)
        command = StallCheck(
            command_id=stall_check_id(state.order_id, state.seq),
            order_id=state.order_id,
            issued_at=due_at,
            correlation_id=state.correlation_id,
            causation_id=last_event_id,
            stalled_seq=state.seq,
        )
        return (_timer(state.updated_at, due_at, command),)
    return ()


def _timer(armed_at: datetime, due_at: datetime, command: RetryDue | StallCheck) -> Timer:
    delay_ms = (due_at - armed_at) // timedelta(milliseconds=1)
    return Timer(delay_ms=delay_ms, due_at=due_at, command=command)
