"""`decide(state, command) -> events`: the order aggregate's only way to make history.

Pure: the clock (`now`) and the retry policy are passed in; event ids are derived from
(order id, seq). Every rule tolerates at-least-once delivery: a duplicate, a late report
for an earlier attempt or a report that does not fit the status decides nothing, and
nothing is ever decided after a terminal event.

Events are appended one by one (Kafka without transactions), so a crash can leave a
decision half-written: `OrderAccepted` without `RoutingStarted`, say. Such an order is
*interrupted*; the redelivered command, or the watchdog's `StallCheck`, decides the rest
of the decision, with the same ids it would have had.

Conditional orders (limit, sniper) are decided in `waiting`; their validation is in
`validation`.

A command appended after its accept-by deadline (`BaseCommand.appended_too_late`: both
instants come from the record, the broker's append time and the edge's deadline) decides
nothing whatever the order's state: it raises `AcceptDeadlinePassed`, and the shell parks it.
That keeps the edge's "503: not executed" true, and leaves a fresh order id unused, so a
retry under the same idempotency key can still create the order.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import assert_never

from domain.orders.amounts import executed_price, min_amount_out
from domain.orders.commands import (
    AttemptFailed,
    CancelOrder,
    ChildReport,
    Command,
    ExecuteOrder,
    ExpiryDue,
    ObservePrice,
    PoolTriggerFired,
    PriceReached,
    RetryDue,
    RouteFound,
    RouteNotFound,
    SliceDue,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
    to_millis,
)
from domain.orders.errors import AcceptDeadlinePassed, InvalidStateTransition, OrderMismatch
from domain.orders.events import (
    AttemptError,
    CancelRejected,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderRedriven,
    RouteSelected,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
)
from domain.orders.failures import answer_failure, attempt_failed
from domain.orders.parent_decide import decide_parent, opens_parent
from domain.orders.policy import ExecutionPolicy
from domain.orders.signatures import transaction_signature
from domain.orders.stamps import Stamper
from domain.orders.state import (
    OrderState,
    awaits_stage,
    is_interrupted,
    is_terminal,
    unanswered_failure,
)
from domain.orders.status import CANCELLABLE, STAGE_STATUSES, AttemptStage, OrderStatus
from domain.orders.terms import OrderTerms
from domain.orders.validation import validate
from domain.orders.waiting import first_steps, on_expiry, on_observed, on_trigger
from domain.quotes import RoutingDecision

__all__ = ["ExecutionPolicy", "decide"]  # the policy lives in .policy

_PENDING, _ROUTING = OrderStatus.PENDING, OrderStatus.ROUTING
_BUILDING, _SUBMITTED = OrderStatus.BUILDING, OrderStatus.SUBMITTED


def decide(
    state: OrderState, command: Command, *, now: datetime, policy: ExecutionPolicy
) -> tuple[Event, ...]:
    """The events `command` causes in `state` (often none). Raises only on bugs/bad input."""
    if command.order_id != state.order_id:
        raise OrderMismatch(f"command for order {command.order_id} sent to {state.order_id}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if command.appended_too_late:
        raise _too_late(command)
    if state.parent is not None or (state.status is None and opens_parent(command)):
        return decide_parent(state, command, now=now)  # twap/dca: a machine of its own
    if state.status is None:
        return _execute(state, command, now) if isinstance(command, ExecuteOrder) else ()
    if is_terminal(state):
        return ()
    stamp = Stamper(
        state.order_id,
        state.seq,
        now=now,
        correlation_id=_correlation_id(state),
        causation_id=command.command_id,
    )
    if _resumes(state, command):
        return _finish_interrupted(state, stamp, policy)
    return _react(state, command, stamp, policy)


def _react(
    state: OrderState, command: Command, stamp: Stamper, policy: ExecutionPolicy
) -> tuple[Event, ...]:
    match command:
        case ExecuteOrder():
            return ()  # the order exists: a duplicate (redelivery, or a retried POST)
        case CancelOrder():
            return _cancel(state, command, stamp)
        case RouteFound():
            return _route_found(state, command, stamp, policy)
        case RouteNotFound():
            if not _is_current(state, command.attempt, (_ROUTING,)):
                return ()
            error = _error(state, AttemptStage.ROUTING, command, stamp)
            return attempt_failed(state, error, stamp, policy)
        case AttemptFailed():
            if not _is_current(state, command.attempt, STAGE_STATUSES[command.stage]):
                return ()
            error = _error(state, command.stage, command, stamp)
            return attempt_failed(state, error, stamp, policy)
        case SubmissionSucceeded():
            if not _is_current(state, command.attempt, (_BUILDING,), command.signature):
                return ()
            return (_submitted(state, stamp, command.slot),)
        case SwapConfirmed():
            return _swap_confirmed(state, command, stamp)
        case RetryDue():
            if state.retry_pending != command.attempt:
                return ()
            return (RoutingStarted(**stamp(), attempt=command.attempt),)
        case StallCheck():
            if state.seq != command.stalled_seq or not awaits_stage(state):
                return ()
            stage = _status(state)
            return (
                OrderRedriven(
                    **stamp(), stage=stage, stalled_seq=command.stalled_seq, attempt=state.attempt
                ),
            )
        case PriceReached() | PoolTriggerFired():
            return on_trigger(state, command, stamp)
        case ObservePrice():
            return on_observed(state, command, stamp)
        case ExpiryDue():
            return on_expiry(state, stamp)
        case SliceDue() | ChildReport():
            return ()  # a parent's commands: a market order has no slices, no children
        case _:
            assert_never(command)


# --- accepting ---------------------------------------------------------------------------


def _too_late(command: Command) -> AcceptDeadlinePassed:
    assert command.appended_at is not None and command.accept_by is not None
    return AcceptDeadlinePassed(command.command_id, command.order_id,
                                to_millis(command.appended_at), to_millis(command.accept_by))


def _execute(state: OrderState, command: ExecuteOrder, now: datetime) -> tuple[Event, ...]:
    validate(command)
    # The order's correlation id is the id of the command that created it.
    stamp = Stamper(
        state.order_id,
        state.seq,
        now=now,
        correlation_id=command.command_id,
        causation_id=command.command_id,
    )
    accepted = OrderAccepted(**stamp(), terms=command.terms, owner=command.owner,
                             parent_id=command.parent_id)
    # A market order starts routing at once; a conditional one waits for its trigger.
    return accepted, *first_steps(command.terms, stamp)


# --- interrupted decisions -----------------------------------------------------------------


def _resumes(state: OrderState, command: Command) -> bool:
    """Is `command` the redelivered cause of an interrupted decision, or its watchdog?"""
    if not is_interrupted(state):
        return False
    match command:
        case ExecuteOrder():
            return True
        case StallCheck():
            return command.stalled_seq == state.seq
        case RouteFound() | RouteNotFound() | AttemptFailed() | SubmissionSucceeded() | (
            SwapConfirmed()
        ):
            return command.attempt == state.attempt
        case PriceReached() | PoolTriggerFired():
            return _triggered_only(state)  # the redelivered trigger of OrderTriggered
        case CancelOrder() | RetryDue() | ObservePrice() | ExpiryDue() | SliceDue() | (
            ChildReport()
        ):
            return False  # not the cause: decided as usual (a cancel may end the order)
        case _:
            assert_never(command)


def _finish_interrupted(
    state: OrderState, stamp: Stamper, policy: ExecutionPolicy
) -> tuple[Event, ...]:
    """The rest of the interrupted decision, as it would have been decided."""
    failure = unanswered_failure(state)
    if failure is not None:
        return answer_failure(state, failure, state.errors, stamp, policy)
    if state.status is _PENDING:
        return first_steps(_terms(state), stamp)
    if _triggered_only(state):
        return (RoutingStarted(**stamp(), attempt=1),)
    return (_built(state, stamp, _route_floor(state)),)


def _triggered_only(state: OrderState) -> bool:
    """OrderTriggered was appended but its RoutingStarted was not."""
    return state.status is _ROUTING and state.attempt == 0


# --- routing and execution ------------------------------------------------------------------


def _route_found(
    state: OrderState, command: RouteFound, stamp: Stamper, policy: ExecutionPolicy
) -> tuple[Event, ...]:
    if not _is_current(state, command.attempt, (_ROUTING,)):
        return ()
    decision, terms = command.decision, _terms(state)
    problem = _unusable_route(decision, terms)
    if problem is not None:
        error = AttemptError(
            attempt=state.attempt, stage=AttemptStage.ROUTING, error_code=problem[0],
            message=problem[1], transient=False, occurred_at=stamp.now,
        )
        return attempt_failed(state, error, stamp, policy)
    floor = min_amount_out(decision.amount_out, terms.slippage_bps)
    selected = RouteSelected(
        **stamp(), attempt=command.attempt, decision=decision, min_amount_out=floor
    )
    return selected, _built(state, stamp, floor)


def _unusable_route(decision: RoutingDecision, terms: OrderTerms) -> tuple[str, str] | None:
    """(error code, message) if the route must not be executed; retrying will not help."""
    if decision.amount_out <= 0:
        return "zero_amount_out", "the best route yields nothing"
    routed = (decision.token_in, decision.token_out, decision.amount_in)
    ordered = (terms.token_in, terms.token_out, terms.amount_in)
    if routed != ordered:
        # A route for another pair or amount would execute a swap nobody asked for.
        return "route_mismatch", f"the route swaps {routed}, the order asks {ordered}"
    return None


def _built(state: OrderState, stamp: Stamper, floor: int) -> TransactionBuilt:
    signature = transaction_signature(state.order_id, state.attempt)
    return TransactionBuilt(
        **stamp(), attempt=state.attempt, signature=signature, min_amount_out=floor
    )


def _submitted(state: OrderState, stamp: Stamper, slot: int) -> TransactionSubmitted:
    signature = state.signature
    if signature is None:
        raise InvalidStateTransition(f"order {state.order_id} is building without a signature")
    return TransactionSubmitted(**stamp(), attempt=state.attempt, signature=signature, slot=slot)


def _swap_confirmed(state: OrderState, command: SwapConfirmed, stamp: Stamper) -> tuple[Event, ...]:
    if not _is_current(state, command.attempt, (_BUILDING, _SUBMITTED), command.signature):
        return ()
    events: list[Event] = []
    if state.status is _BUILDING:
        # The submission report was lost (e.g. a crash): the confirmation proves it.
        events.append(_submitted(state, stamp, command.slot))
    terms = _terms(state)
    price = executed_price(
        terms.amount_in,
        command.amount_out,
        decimals_in=terms.token_in_decimals,
        decimals_out=terms.token_out_decimals,
    )
    confirmed = OrderConfirmed(
        **stamp(),
        attempt=command.attempt,
        signature=command.signature,
        amount_out=command.amount_out,
        executed_price=price,
        slot=command.slot,
    )
    return (*events, confirmed)


# --- failures and cancels ----------------------------------------------------------------------


def _error(
    state: OrderState,
    stage: AttemptStage,
    report: RouteNotFound | AttemptFailed,
    stamp: Stamper,
) -> AttemptError:
    return AttemptError(
        attempt=state.attempt,
        stage=stage,
        error_code=report.error_code,
        message=report.message,
        transient=report.transient,
        occurred_at=stamp.now,
    )


def _cancel(state: OrderState, command: CancelOrder, stamp: Stamper) -> tuple[Event, ...]:
    # Until the transaction exists (pending, waiting, routing) nothing of the order can land.
    if state.status in CANCELLABLE:
        return (OrderCancelled(**stamp(), reason=command.reason),)
    if state.status in (_BUILDING, _SUBMITTED):
        if state.cancel_rejected_attempt == state.attempt:
            return ()  # this attempt already answered a cancel: same answer, no new fact
        reason = f"too late to cancel: the transaction is already {_status(state)}"
        return (CancelRejected(**stamp(), reason=reason),)
    return ()


# --- reading the state -------------------------------------------------------------------------


def _is_current(
    state: OrderState,
    attempt: int,
    statuses: Collection[OrderStatus],
    signature: str | None = None,
) -> bool:
    """Does a report fit: the attempt in flight (no backoff running), a fitting status and,
    for execution reports, the attempt's own transaction?"""
    return (
        attempt == state.attempt
        and state.retry_pending is None
        and state.status in statuses
        and (signature is None or signature == state.signature)
    )


def _route_floor(state: OrderState) -> int:
    if state.min_amount_out is None:
        raise InvalidStateTransition(f"order {state.order_id} is building without a route")
    return state.min_amount_out


def _correlation_id(state: OrderState) -> str:
    if state.correlation_id is None:
        raise InvalidStateTransition(f"order {state.order_id} has a status but no correlation id")
    return state.correlation_id


def _terms(state: OrderState) -> OrderTerms:
    if state.terms is None:
        raise InvalidStateTransition(f"order {state.order_id} has a status but no terms")
    return state.terms


def _status(state: OrderState) -> OrderStatus:
    if state.status is None:
        raise InvalidStateTransition(f"order {state.order_id} is not accepted")
    return state.status
