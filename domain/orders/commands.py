"""Commands: the inputs of the order aggregate, imperative and immutable.

Four families share one topic (`orders.commands`, keyed by order id) and one envelope:
- edge commands from the HTTP API (`ExecuteOrder`, `CancelOrder`);
- stage reports: facts the routing and execution stages report back (`RouteFound`, ...);
- trigger reports: what the trigger stage saw in the market for a waiting conditional order
  (`PriceReached`, `PoolTriggerFired`, `ObservePrice`);
- timers fired by the order agent's timer wheel (`RetryDue`, `StallCheck`, `ExpiryDue`).
Only the order aggregate turns them into events, so one writer owns each order's history.

Prices are Decimals in human units, tokenOut received per 1 tokenIn (as limit prices are
written); see `terms` for an order's own terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final, get_args

from domain.orders.status import AttemptStage, OrderStatus, OrderType, Trigger
from domain.orders.terms import OrderTerms
from domain.quotes import RoutingDecision


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseCommand:
    """Fields every command carries. `issued_at` is tz-aware UTC.

    `correlation_id` / `causation_id` are tracing links set by whoever issues the command
    (a stage sets the order's correlation id and the id of the event it reacts to).

    `accept_by` (edge commands, schema v5): the command counts only if the broker appended
    its record by then. `appended_at` is not on the wire: it is that record's broker append
    time (LogAppendTime), which the shell that consumed the record fills in; None when the
    record carries no append time (a topic on CreateTime, or a command never consumed).
    Both sides of the comparison come from the record, so every reader judges it alike.
    """

    command_id: str
    order_id: str
    issued_at: datetime
    correlation_id: str | None = None
    causation_id: str | None = None
    accept_by: datetime | None = None
    appended_at: datetime | None = None

    @property
    def appended_too_late(self) -> bool:
        """Was the record appended after its accept-by deadline? Without a deadline, or
        without a broker append time to judge by, it is not."""
        return (self.accept_by is not None and self.appended_at is not None
                and self.appended_at > self.accept_by)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds of a tz-aware instant (floor), exactly: no float on the way."""
    return (moment - _EPOCH) // _MILLISECOND


def from_millis(millis: int) -> datetime:
    """The UTC instant of epoch milliseconds (a Kafka record timestamp, an acceptBy)."""
    return _EPOCH + millis * _MILLISECOND


# --- edge commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecuteOrder(BaseCommand):
    """Execute the order whose `terms` (market, limit or sniper) the trader gave."""

    terms: OrderTerms
    owner: str | None = None  # the id of the API key that placed it; None without auth
    parent_id: str | None = None  # v6: a slice of this twap/dca parent (sent by its writer)

    @property
    def order_type(self) -> OrderType:
        return self.terms.order_type


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(BaseCommand):
    """Cancel the order if no transaction of it exists yet (pending, waiting, routing)."""

    reason: str | None = None


# --- stage reports ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteFound(BaseCommand):
    """The routing stage picked a route for `attempt`."""

    attempt: int
    decision: RoutingDecision


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteNotFound(BaseCommand):
    """The routing stage could not route `attempt` (no pool, venues down...)."""

    attempt: int
    error_code: str
    message: str
    transient: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionSucceeded(BaseCommand):
    """The execution stage submitted the transaction of `attempt`."""

    attempt: int
    signature: str
    slot: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFailed(BaseCommand):
    """A stage failed `attempt`.

    The execution stage must report a submit/confirm failure as transient only once the
    transaction can no longer land (its blockhash expired): a retry builds a new
    transaction, and two landed transactions would execute the swap twice.
    """

    attempt: int
    stage: AttemptStage
    error_code: str
    message: str
    transient: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapConfirmed(BaseCommand):
    """The chain confirmed the transaction of `attempt`."""

    attempt: int
    signature: str
    amount_out: int
    slot: int


# --- trigger reports ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceReached(BaseCommand):
    """A waiting limit order's own size now fetches `observed_price`, net of fees and impact,
    at or above its limit (`market_event_id`: the market record that moved it there)."""

    observed_price: Decimal
    market_event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolTriggerFired(BaseCommand):
    """A pool event met a waiting sniper order's `trigger`: a pool of its token on `venue`,
    worth `liquidity_usd`, where the order's size fetches `observed_price`."""

    trigger: Trigger
    venue: str
    liquidity_usd: Decimal
    observed_price: Decimal
    market_event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservePrice(BaseCommand):
    """Record the best net executable price for a waiting order's size (throttled)."""

    best_price: Decimal


# --- timers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDue(BaseCommand):
    """The backoff before `attempt` has elapsed."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StallCheck(BaseCommand):
    """Watchdog: re-drive the order if its last event is still `stalled_seq`."""

    stalled_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryDue(BaseCommand):
    """A GTD order's `expires_at` has come."""

    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceDue(BaseCommand):
    """Slice `slice_index` of a parent (twap, dca) is due. The timer is derived from the
    parent's state (`timers_of`); when the parent has price bounds (`needs_price`), the shell
    that fires it fills `observed_price`: what `amount_in` of `token_in` fetches in
    `token_out` now (net, per 1 tokenIn; None: no route). A parent whose schedule is done
    gets one too (the index past its last slice): it completes an interrupted decision."""

    slice_index: int
    token_in: str
    token_out: str
    amount_in: int
    needs_price: bool = False
    observed_price: Decimal | None = None


# --- child reports -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildReport(BaseCommand):
    """A slice (child market order) of the parent `order_id` appended up to `child_seq` and
    is now `child_status`; sent by the child's writer once those events are durable."""

    child_id: str
    child_seq: int
    child_status: OrderStatus
    amount_out: int | None = None


EdgeCommand = ExecuteOrder | CancelOrder
StageReport = RouteFound | RouteNotFound | SubmissionSucceeded | AttemptFailed | SwapConfirmed
TriggerReport = PriceReached | PoolTriggerFired | ObservePrice
TimerCommand = RetryDue | StallCheck | ExpiryDue | SliceDue
Command = EdgeCommand | StageReport | TriggerReport | TimerCommand | ChildReport

COMMAND_TYPES: Final[tuple[type[Command], ...]] = get_args(Command)
# BaseCommand fields that describe the record a command arrived in, not the command: never
# written to orders.commands.
NOT_ON_THE_WIRE: Final = frozenset({"appended_at"})
