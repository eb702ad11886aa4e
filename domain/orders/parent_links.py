"""The commands that link a parent order (twap, dca) and its children: pure, derived from the
state a decision reached (or a fold loaded) and its events.

- a parent's `SliceReleased` -> the child's `ExecuteOrder` (an ordinary market order of the
  slice's amount, the parent's pair, slippage and owner, carrying `parent_id`);
- a parent's `ParentCancelRequested` -> a `CancelOrder` to each child a cancel may still end;
- any decision of a child -> a `ChildReport` to its parent of the child's seq and status.

The writer sends them only once the events are durable, like stage work. Ids are derived
(`ids.child_execute_id`, `child_cancel_id`, `child_report_id`) and every receiver treats a
repeat as a duplicate, so sending them again is harmless: that is what `commands_on_load`
does for a freshly folded partition, so a crash between an event and its command loses
nothing (a released child that never reported is released again, a cancel is repeated, a
child reports again: a live one, and an ended one whose end the fold saw).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.orders.commands import CancelOrder, ChildReport, Command, ExecuteOrder
from domain.orders.events import Event, ParentCancelRequested, SliceReleased
from domain.orders.ids import child_cancel_id, child_execute_id, child_report_id, event_id
from domain.orders.parent_state import ChildView
from domain.orders.state import OrderState, is_terminal
from domain.orders.status import OrderStatus
from domain.orders.terms import PARENT_TERMS, MarketTerms


def commands_after(state: OrderState, events: Iterable[Event]) -> tuple[Command, ...]:
    """What the writer sends once `events` (which led to `state`) are durable."""
    events = tuple(events)
    if not events:
        return ()
    if state.parent_id is not None:
        return (_report(state, state.parent_id),)
    if state.parent is None:
        return ()
    sent: list[Command] = []
    for event in events:
        if isinstance(event, SliceReleased):
            sent.append(_execute(state, event.child_id, event.amount_in, event.event_id))
        elif isinstance(event, ParentCancelRequested):
            sent.extend(_cancels(state, state.parent.children, event.event_id))
    return tuple(sent)


def commands_on_load(state: OrderState) -> tuple[Command, ...]:
    """What a freshly folded state may have left unsent (see the module docstring). An
    ended child's final report counts: the command that ended it, delivered again after a
    crash, finds only its id and decides (so sends) nothing."""
    if state.status is None:
        return ()
    if state.parent_id is not None:
        return (_report(state, state.parent_id),)
    if is_terminal(state):
        return ()
    progress = state.parent
    if progress is None:
        return ()
    last = event_id(state.order_id, state.seq)
    unheard = [_execute(state, c.child_id, c.amount_in, last)
               for c in progress.children if c.seq == 0]
    cancels = _cancels(state, progress.children, last) if progress.cancel_requested else []
    return (*unheard, *cancels)


def _execute(state: OrderState, child: str, amount_in: int, cause: str) -> ExecuteOrder:
    terms = state.terms
    assert isinstance(terms, PARENT_TERMS) and state.updated_at is not None
    command_id = child_execute_id(child)
    slice_terms = MarketTerms(
        token_in=terms.token_in, token_out=terms.token_out,
        token_in_symbol=terms.token_in_symbol, token_out_symbol=terms.token_out_symbol,
        token_in_decimals=terms.token_in_decimals, token_out_decimals=terms.token_out_decimals,
        amount_in=amount_in, slippage_bps=terms.slippage_bps,
    )
    return ExecuteOrder(command_id=command_id, order_id=child, issued_at=state.updated_at,
                        correlation_id=command_id, causation_id=cause, terms=slice_terms,
                        owner=state.owner, parent_id=state.order_id)


def _cancels(state: OrderState, children: Iterable[ChildView], cause: str) -> list[Command]:
    assert state.updated_at is not None
    return [CancelOrder(command_id=child_cancel_id(child.child_id), order_id=child.child_id,
                        issued_at=state.updated_at, causation_id=cause,
                        reason=f"parent {state.order_id} cancelled")
            for child in children if child.cancellable]


def _report(state: OrderState, parent_id: str) -> ChildReport:
    assert state.status is not None and state.updated_at is not None
    confirmed = state.status is OrderStatus.CONFIRMED
    return ChildReport(
        command_id=child_report_id(parent_id, state.order_id, state.seq), order_id=parent_id,
        issued_at=state.updated_at, causation_id=event_id(state.order_id, state.seq),
        child_id=state.order_id, child_seq=state.seq, child_status=state.status,
        amount_out=state.amount_out if confirmed else None)
