"""The order aggregate, pure: commands in, events out, state folded from events.

`decide(state, command, now=..., policy=...) -> events` and `evolve(state, event) -> state`
are the whole behaviour; the lifecycle is the table in `transitions`. Nothing here does
I/O, reads a clock or draws random numbers.
"""

from domain.orders.commands import (
    COMMAND_TYPES,
    AttemptFailed,
    BaseCommand,
    CancelOrder,
    Command,
    ExecuteOrder,
    RetryDue,
    RouteFound,
    RouteNotFound,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
)
from domain.orders.amounts import executed_price, min_amount_out
from domain.orders.decide import decide
from domain.orders.errors import (
    InvalidCommand,
    InvalidStateTransition,
    OrderDomainError,
    OrderMismatch,
    SequenceGap,
    UnsupportedOrderType,
)
from domain.orders.events import (
    EVENT_TYPES,
    TERMINAL_EVENTS,
    AttemptError,
    BaseEvent,
    CancelRejected,
    Event,
    ExecutionAttemptFailed,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderFailed,
    OrderRedriven,
    PostMortem,
    RetryScheduled,
    RouteSelected,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
)
from domain.orders.evolve import evolve, fold
from domain.orders.ids import event_id
from domain.orders.policy import ExecutionPolicy
from domain.orders.signatures import transaction_signature
from domain.orders.state import (
    OrderState,
    OrderTerms,
    awaits_stage,
    initial_state,
    is_interrupted,
    is_terminal,
)
from domain.orders.status import TERMINAL, AttemptStage, OrderStatus, OrderType
from domain.orders.timers import Timer, timers_after, timers_of
from domain.orders.transitions import SAME, TRANSITIONS, next_status

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "SAME",
    "TERMINAL",
    "TERMINAL_EVENTS",
    "TRANSITIONS",
    "AttemptError",
    "AttemptFailed",
    "AttemptStage",
    "BaseCommand",
    "BaseEvent",
    "CancelOrder",
    "CancelRejected",
    "Command",
    "Event",
    "ExecuteOrder",
    "ExecutionAttemptFailed",
    "ExecutionPolicy",
    "InvalidCommand",
    "InvalidStateTransition",
    "OrderAccepted",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderDomainError",
    "OrderFailed",
    "OrderMismatch",
    "OrderRedriven",
    "OrderState",
    "OrderStatus",
    "OrderTerms",
    "OrderType",
    "PostMortem",
    "RetryDue",
    "RetryScheduled",
    "RouteFound",
    "RouteNotFound",
    "RouteSelected",
    "RoutingStarted",
    "SequenceGap",
    "StallCheck",
    "SubmissionSucceeded",
    "SwapConfirmed",
    "Timer",
    "TransactionBuilt",
    "TransactionSubmitted",
    "UnsupportedOrderType",
    "awaits_stage",
    "decide",
    "event_id",
    "evolve",
    "executed_price",
    "fold",
    "initial_state",
    "is_interrupted",
    "is_terminal",
    "min_amount_out",
    "next_status",
    "timers_after",
    "timers_of",
    "transaction_signature",
]
