"""Events: the immutable facts of an order's history, past tense, one class per fact.

Every event carries its id, the order id, the per-order `seq` (1, 2, 3...), when it
occurred, the order's correlation id (the `ExecuteOrder` command id) and its causation id
(the command that caused it). The Kafka envelope (key, headers, coordinates) is not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, get_args

from domain.orders.status import AttemptStage, OrderStatus, OrderType, Trigger
from domain.orders.terms import OrderTerms
from domain.quotes import RoutingDecision


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseEvent:
    """Fields every event carries."""

    event_id: str
    order_id: str
    seq: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptError:
    """One failed attempt, as kept in the state and in the post-mortem."""

    attempt: int
    stage: AttemptStage
    error_code: str
    message: str
    transient: bool
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PostMortem:
    """Why an order failed: every attempt's error and the last routing decision."""

    attempts: int
    errors: tuple[AttemptError, ...]
    last_decision: RoutingDecision | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(BaseEvent):
    """The order was accepted with its `terms`, as the `ExecuteOrder` gave them: `pending`."""

    terms: OrderTerms
    owner: str | None = None  # the placing API key's id (ExecuteOrder.owner); None before auth
    parent_id: str | None = None  # v6: the twap/dca parent that released this market order

    @property
    def order_type(self) -> OrderType:
        return self.terms.order_type


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderWaiting(BaseEvent):
    """A conditional order waits for `trigger` (price, pool_created, liquidity): `waiting`."""

    trigger: Trigger


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceObserved(BaseEvent):
    """The best net executable price for the waiting order's size is now `best_price`
    (tokenOut per 1 tokenIn): the throttled `bestPrice` update; status unchanged."""

    best_price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTriggered(BaseEvent):
    """The order's condition was met; routing of attempt 1 starts next: status `routing`.

    `observed_price` is what the order's size fetched when it fired (tokenOut per 1 tokenIn);
    a sniper's also names the pool event's `venue` and the pool's `liquidity_usd`.
    """

    trigger: Trigger
    observed_price: Decimal
    venue: str | None = None
    liquidity_usd: Decimal | None = None
    market_event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingStarted(BaseEvent):
    """Routing of `attempt` began: status `routing`."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSelected(BaseEvent):
    """A route was chosen; the swap must yield at least `min_amount_out`: `building`."""

    attempt: int
    decision: RoutingDecision
    min_amount_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionBuilt(BaseEvent):
    """The transaction of `attempt` was built and signed; its signature is known."""

    attempt: int
    signature: str
    min_amount_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionSubmitted(BaseEvent):
    """The transaction was submitted to the chain: status `submitted`."""

    attempt: int
    signature: str
    slot: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionAttemptFailed(BaseEvent):
    """An attempt failed at `stage`; a retry or the order's failure follows."""

    attempt: int
    stage: AttemptStage
    error_code: str
    message: str
    transient: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(BaseEvent):
    """`next_attempt` will start at `retry_at`: status `routing`."""

    next_attempt: int
    delay_ms: int
    retry_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderConfirmed(BaseEvent):
    """The swap landed. `executed_price` is tokenOut per 1 tokenIn, human units."""

    attempt: int
    signature: str
    amount_out: int
    executed_price: Decimal
    slot: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFailed(BaseEvent):
    """The order failed for good: status `failed`."""

    reason_code: str
    message: str
    post_mortem: PostMortem


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(BaseEvent):
    """The order was cancelled before its transaction was built."""

    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(BaseEvent):
    """A GTD order's time ran out before any transaction of it existed: status `expired`."""

    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected(BaseEvent):
    """A cancel arrived too late (transaction built or submitted); the order goes on."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRedriven(BaseEvent):
    """The watchdog found the order stalled at `stalled_seq` and re-drove `stage`."""

    stage: OrderStatus
    stalled_seq: int
    attempt: int


# --- parent orders (twap, dca): their own aggregate, folded by `parent_evolve` -----------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentAccepted(BaseEvent):
    """A twap/dca parent was accepted with its `terms` and `slice_amounts` (the amount of each
    slice its schedule will release, `domain.orders.schedule`): status `waiting` while it
    works. (Not `slices`: the flat JSON view of the terms has a twap's `slices` already.)"""

    terms: OrderTerms
    slice_amounts: tuple[int, ...]
    owner: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceReleased(BaseEvent):
    """Slice `slice_index` was released as the market order `child_id` of `amount_in`;
    `observed_price`: what its size fetched when it was due (when the parent has bounds)."""

    slice_index: int
    child_id: str
    amount_in: int
    observed_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceSkipped(BaseEvent):
    """Slice `slice_index` was not executed: its price was outside the parent's bounds
    (`price_below_min`, `price_above_max`) or could not be quoted (`no_quote`)."""

    slice_index: int
    amount_in: int
    reason: str
    observed_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildProgressed(BaseEvent):
    """The child `child_id` appended up to `child_seq` and is now `child_status` (with
    `amount_out` once confirmed): the parent's own, gapless record of its children."""

    child_id: str
    child_seq: int
    child_status: OrderStatus
    amount_out: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentCancelRequested(BaseEvent):
    """A cancel stopped the schedule; the children still live are being cancelled (those
    past `routing` finish), and `ParentCancelled` follows when the last one ends."""

    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentCompleted(BaseEvent):
    """Every slice was released or skipped and every child ended: `confirmed` if any child
    was, else `failed`."""

    amount_in: int  # spent: the amounts of the confirmed children
    amount_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentCancelled(BaseEvent):
    """A cancelled parent whose children all ended: `cancelled` (what they filled stays)."""

    reason: str | None
    amount_in: int
    amount_out: int


Event = (
    OrderAccepted
    | RoutingStarted
    | RouteSelected
    | TransactionBuilt
    | TransactionSubmitted
    | ExecutionAttemptFailed
    | RetryScheduled
    | OrderConfirmed
    | OrderFailed
    | OrderCancelled
    | CancelRejected
    | OrderRedriven
    | OrderWaiting
    | PriceObserved
    | OrderTriggered
    | OrderExpired
    | ParentAccepted
    | SliceReleased
    | SliceSkipped
    | ChildProgressed
    | ParentCancelRequested
    | ParentCompleted
    | ParentCancelled
)

EVENT_TYPES: Final[tuple[type[Event], ...]] = get_args(Event)
# The events that end an order (one of them is always its last event). For isinstance().
TERMINAL_EVENTS: Final = (OrderConfirmed, OrderFailed, OrderCancelled, OrderExpired,
                          ParentCompleted, ParentCancelled)
# The events of a parent order (twap, dca), folded by `parent_evolve`. For isinstance().
PARENT_EVENTS: Final = (ParentAccepted, SliceReleased, SliceSkipped, ChildProgressed,
                        ParentCancelRequested, ParentCompleted, ParentCancelled)
