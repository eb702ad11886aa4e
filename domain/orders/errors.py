"""Named errors of the order domain.

They signal bugs or invalid input that must never become an event: business failures
(no route, a failed swap) are events (`ExecutionAttemptFailed`, `OrderFailed`), not errors.
"""

from __future__ import annotations


class OrderDomainError(Exception):
    """Base class of every error raised by `domain.orders`."""


class InvalidStateTransition(OrderDomainError):
    """An event that the order cannot accept in its current state (a bug in the writer)."""


class SequenceGap(InvalidStateTransition):
    """An event whose `seq` is not the next one of the order."""

    def __init__(self, order_id: str, expected: int, got: int) -> None:
        super().__init__(f"order {order_id}: expected event seq {expected}, got {got}")
        self.order_id = order_id
        self.expected = expected
        self.got = got


class OrderMismatch(InvalidStateTransition):
    """A message addressed to another order than the state it is applied to."""


class InvalidCommand(OrderDomainError):
    """A command that the edge should have rejected before producing it."""


class AcceptDeadlinePassed(OrderDomainError):
    """An edge command whose record the broker appended after its accept-by deadline.

    The edge answered its request "not executed" (or could not have answered it in time), so
    the writer must decide nothing from it; the shell parks it (dead letter) with this reason.
    """

    REASON = "accept_deadline_passed"

    def __init__(self, command_id: str, order_id: str, appended_ms: int, accept_by_ms: int) -> None:
        super().__init__(
            f"{self.REASON}: command {command_id} of order {order_id} was appended at "
            f"{appended_ms} ms, {appended_ms - accept_by_ms} ms after its accept-by deadline "
            f"{accept_by_ms} ms (epoch milliseconds)"
        )
        self.order_id = order_id
