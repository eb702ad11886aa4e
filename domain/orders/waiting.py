"""The decisions of conditional orders (limit, sniper), part of the decider (pure).

- accepted: a market order starts routing; a conditional one waits (`OrderWaiting`), or
  expires at once if its GTD time has already passed when the writer gets to it;
- a trigger report that meets the order's terms fires it: `OrderTriggered`, then the first
  attempt's `RoutingStarted`, so routing and execution are a market order's from there on;
  a trigger report decided at or after a GTD order's `expires_at` expires it instead;
- `ObservePrice` records a new best price of a waiting order (`PriceObserved`);
- `ExpiryDue` ends a GTD order whose time is up while no transaction of it exists.

Everything else (a report for an order that is not waiting, a stale or repeated report, a
price that does not meet the limit) decides nothing: with one writer per order, the first of
a cancel, an expiry and a trigger wins and the others find the order no longer waiting.
"""

from __future__ import annotations

from domain.orders.commands import ObservePrice, PoolTriggerFired, PriceReached
from domain.orders.conditions import limit_reached, sniper_fires
from domain.orders.errors import InvalidStateTransition
from domain.orders.events import (
    Event,
    OrderExpired,
    OrderTriggered,
    OrderWaiting,
    PriceObserved,
    RoutingStarted,
)
from domain.orders.stamps import Stamper
from domain.orders.state import OrderState
from domain.orders.status import CANCELLABLE, OrderStatus, Trigger
from domain.orders.terms import LimitTerms, OrderTerms, SniperTerms


def first_steps(terms: OrderTerms, stamp: Stamper) -> tuple[Event, ...]:
    """What follows `OrderAccepted`: routing at once, waiting, or (too late) expiry."""
    waits_for = terms.waits_for
    if waits_for is None:
        return (RoutingStarted(**stamp(), attempt=1),)
    if terms.expired_at(stamp.now):
        return (_expired(terms, stamp),)
    return (OrderWaiting(**stamp(), trigger=waits_for),)


def on_trigger(
    state: OrderState, report: PriceReached | PoolTriggerFired, stamp: Stamper
) -> tuple[Event, ...]:
    if state.status is not OrderStatus.WAITING:
        return ()
    terms = _terms(state)
    if terms.expired_at(stamp.now):
        # The time in force has ended: no trade may start after it (issue 10). Expiring now
        # is the very event the ExpiryDue timer would decide (same seq, same id), so a timer
        # that is late (a crash, a busy wheel) changes nothing; waiting for it instead would
        # leave an order that cannot trade any more shown as waiting.
        return (_expired(terms, stamp),)
    if isinstance(report, PriceReached):
        if not isinstance(terms, LimitTerms) or not limit_reached(terms.limit_price,
                                                                   report.observed_price):
            return ()
        fired = OrderTriggered(**stamp(), trigger=Trigger.PRICE,
                               observed_price=report.observed_price,
                               market_event_id=report.market_event_id)
    else:
        if not isinstance(terms, SniperTerms) or not sniper_fires(terms, report):
            return ()
        fired = OrderTriggered(**stamp(), trigger=report.trigger,
                               observed_price=report.observed_price, venue=report.venue,
                               liquidity_usd=report.liquidity_usd,
                               market_event_id=report.market_event_id)
    return fired, RoutingStarted(**stamp(), attempt=1)


def on_observed(state: OrderState, command: ObservePrice, stamp: Stamper) -> tuple[Event, ...]:
    """A new best price of a waiting order; the same price again is no new fact."""
    if state.status is not OrderStatus.WAITING or command.best_price == state.best_price:
        return ()
    if not (command.best_price.is_finite() and command.best_price >= 0):
        return ()
    return (PriceObserved(**stamp(), best_price=command.best_price),)


def on_expiry(state: OrderState, stamp: Stamper) -> tuple[Event, ...]:
    """Expire a GTD order whose time is up, if no transaction of it exists yet."""
    terms = _terms(state)
    if state.status not in CANCELLABLE or not terms.expired_at(stamp.now):
        return ()
    return (_expired(terms, stamp),)


def _expired(terms: OrderTerms, stamp: Stamper) -> OrderExpired:
    assert terms.deadline is not None  # expired_at() said so
    return OrderExpired(**stamp(), expires_at=terms.deadline)


def _terms(state: OrderState) -> OrderTerms:
    if state.terms is None:
        raise InvalidStateTransition(f"order {state.order_id} has a status but no terms")
    return state.terms
