"""What a failed attempt leads to: a retry after a backoff, or the order's failure with a
post-mortem. Part of the decider (pure)."""

from __future__ import annotations

from datetime import timedelta

from domain.orders.events import (
    AttemptError,
    Event,
    ExecutionAttemptFailed,
    OrderFailed,
    PostMortem,
    RetryScheduled,
)
from domain.orders.policy import ExecutionPolicy
from domain.orders.stamps import Stamper
from domain.orders.state import OrderState


def attempt_failed(
    state: OrderState, error: AttemptError, stamp: Stamper, policy: ExecutionPolicy
) -> tuple[Event, ...]:
    """Record the failed attempt, then answer it (retry or fail the order)."""
    failed = ExecutionAttemptFailed(
        **stamp(),
        attempt=error.attempt,
        stage=error.stage,
        error_code=error.error_code,
        message=error.message,
        transient=error.transient,
    )
    return failed, *answer_failure(state, error, (*state.errors, error), stamp, policy)


def answer_failure(
    state: OrderState,
    error: AttemptError,
    errors: tuple[AttemptError, ...],
    stamp: Stamper,
    policy: ExecutionPolicy,
) -> tuple[Event, ...]:
    """Retry the order after its backoff, or fail it; `errors` include `error`."""
    attempt = error.attempt
    if policy.may_retry(attempt, transient=error.transient):
        delay_ms = policy.delay_ms(attempt)
        retry_at = stamp.now + timedelta(milliseconds=delay_ms)
        retry = RetryScheduled(
            **stamp(), next_attempt=attempt + 1, delay_ms=delay_ms, retry_at=retry_at
        )
        return (retry,)
    if error.transient:
        reason_code, summary = "attempts_exhausted", f"all {attempt} attempts failed"
    else:
        reason_code, summary = error.error_code, f"attempt {attempt} failed and cannot be retried"
    post_mortem = PostMortem(attempts=attempt, errors=errors, last_decision=state.decision)
    return (
        OrderFailed(
            **stamp(),
            reason_code=reason_code,
            message=f"{summary}; the last at {error.stage}: {error.message}",
            post_mortem=post_mortem,
        ),
    )
