"""The waiting conditional orders of one worker, indexed so that a market change evaluates
only the orders it could fire. Pure: the market, the orders and the events are passed in.

Limit orders sit per direction (token in -> token out) in a list sorted by (limit price,
order id). A change of pair {a, b} moves only the directions with a candidate path through a
pool of {a, b} (a direct pool, or one hop of a two-hop path); for each such direction
`price_bound` caps what any size can fetch, so only the prefix of orders whose limit is at
most that bound are candidates, and only candidates get the exact net price of their own size
(`best_route` for their amount, once per distinct amount). Everything above the bound is
never looked at.

Sniper orders sit per wanted token (token out). A `PoolCreated` or `LiquidityChanged` of a pool
holding that token is checked against each sniper's trigger and threshold, then priced for
its size and guarded by its max price.

An order reported to the writer is `fired` until the writer's next state of it arrives; fired
orders are skipped, so one crossing is reported once, not on every tick until the writer
has caught up (a repeat would decide nothing anyway).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

from domain.market import Market
from domain.market_events import LiquidityChanged, Pair, PoolCreated
from domain.orders.conditions import (
    limit_reached,
    liquidity_crossed,
    liquidity_reached,
    within_max_price,
)
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus, Trigger
from domain.orders.terms import LimitTerms, SniperTerms
from domain.price_bound import price_bound
from domain.pools import PoolKey
from domain.routing import NoRoute, best_route, candidate_paths
from domain.tokens import UnknownToken, unit_price

PoolEvent: TypeAlias = PoolCreated | LiquidityChanged


@dataclass(frozen=True, slots=True)
class Direction:
    token_in: str  # mint
    token_out: str  # mint


@dataclass(frozen=True, slots=True)
class WaitingLimit:
    order_id: str
    direction: Direction
    amount_in: int
    limit_price: Decimal
    best_price: Decimal | None = None  # the last PriceObserved


@dataclass(frozen=True, slots=True)
class WaitingSniper:
    order_id: str
    direction: Direction
    amount_in: int
    trigger: Trigger
    min_liquidity_usd: Decimal | None
    max_price: Decimal | None
    token_out_decimals: int
    accepted_at: datetime  # only pool events after this fire it


Waiting: TypeAlias = WaitingLimit | WaitingSniper
Pricer: TypeAlias = Callable[[Market, Direction, int], Decimal | None]


@dataclass(frozen=True, slots=True)
class Fire:
    """What to report: `order` fetches `price` now (`event`: the pool event of a sniper)."""

    order: Waiting
    price: Decimal
    event: PoolEvent | None = None


@dataclass(slots=True)
class Evaluation:
    fires: list[Fire]
    evaluated: int = 0  # exact prices computed (routes run), the cost of the evaluation


def executable_price(market: Market, direction: Direction, amount_in: int) -> Decimal | None:
    """The net price (tokenOut per 1 tokenIn) `amount_in` fetches on the best route now."""
    try:
        decision = best_route(market, direction.token_in, direction.token_out, amount_in)
        token_in, token_out = market.token(direction.token_in), market.token(direction.token_out)
    except (NoRoute, UnknownToken):
        return None
    return unit_price(amount_in, token_in, decision.amount_out, token_out)


def waiting_of(state: OrderState) -> Waiting | None:
    """The book entry of a waiting order's state; None if the order is not waiting."""
    terms = state.terms
    if state.status is not OrderStatus.WAITING or terms is None:
        return None
    direction = Direction(terms.token_in, terms.token_out)
    if isinstance(terms, LimitTerms):
        return WaitingLimit(state.order_id, direction, terms.amount_in, terms.limit_price,
                            state.best_price)
    if isinstance(terms, SniperTerms):
        assert state.status_history, "a waiting order has been accepted"
        accepted_at = state.status_history[0][1]
        return WaitingSniper(state.order_id, direction, terms.amount_in, terms.trigger,
                             terms.min_liquidity_usd, terms.max_price, terms.token_out_decimals,
                             accepted_at)
    return None


class WaitingBook:
    def __init__(self, pricer: Pricer = executable_price) -> None:
        self._price = pricer
        self._orders: dict[str, Waiting] = {}
        self._limits: dict[Direction, list[tuple[Decimal, str]]] = {}
        self._by_token: dict[str, set[Direction]] = {}
        self._snipers: dict[str, set[str]] = {}  # wanted mint -> order ids
        self._fired: set[str] = set()
        self._topology: frozenset[PoolKey] = frozenset()
        self._used: dict[Direction, frozenset[Pair]] = {}

    # --- keeping it current ---------------------------------------------------------------

    def put(self, order: Waiting) -> bool:
        """Add or replace `order`; True if the book did not hold it before."""
        old = self._orders.get(order.order_id)
        if old == order:
            return False
        if old is not None:
            self._unindex(old)
        self._orders[order.order_id] = order
        self._index(order)
        return old is None

    def remove(self, order_id: str) -> None:
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._unindex(order)
        self._fired.discard(order_id)

    def get(self, order_id: str) -> Waiting | None:
        return self._orders.get(order_id)

    def orders(self) -> Iterator[Waiting]:
        return iter(list(self._orders.values()))

    def price(self, market: Market, direction: Direction, amount_in: int) -> Decimal | None:
        """The exact net price of `amount_in` in `direction` (the book's pricer)."""
        return self._price(market, direction, amount_in)

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def mark_fired(self, order_id: str) -> None:
        self._fired.add(order_id)

    def unfire(self, order_id: str) -> None:
        self._fired.discard(order_id)

    def is_fired(self, order_id: str) -> bool:
        return order_id in self._fired

    # --- reading it ---------------------------------------------------------------------------

    def directions(self) -> list[Direction]:
        return list(self._limits)

    def affected(self, pairs: Iterable[Pair], market: Market | None = None) -> list[Direction]:
        """The directions a change of `pairs` can move: those sharing a token with one and,
        given the `market`, only those with a candidate path through a changed pair's pool."""
        changed = set(pairs)
        found: set[Direction] = set()
        for pair in changed:
            found.update(self._by_token.get(pair.mint_a, ()))
            found.update(self._by_token.get(pair.mint_b, ()))
        if market is not None:
            self._follow_topology(market)
            found = {d for d in found if self._pairs_used(market, d) & changed}
        return sorted(found, key=lambda d: (d.token_in, d.token_out))

    def limits(self, direction: Direction) -> list[WaitingLimit]:
        """Every waiting limit order of `direction`, lowest limit first."""
        return [self._limit(order_id) for _, order_id in self._limits.get(direction, ())]

    def candidates(self, direction: Direction, bound: Decimal) -> list[WaitingLimit]:
        """The unfired orders of `direction` whose limit is at most `bound`."""
        entries = self._limits.get(direction, [])
        end = bisect_right(entries, bound, key=lambda entry: entry[0])
        return [self._limit(order_id) for _, order_id in entries[:end]
                if order_id not in self._fired]

    # --- evaluating it ------------------------------------------------------------------------

    def crossings(self, market: Market, directions: Iterable[Direction]) -> Evaluation:
        """The limit orders of `directions` whose own size now reaches their limit."""
        result = Evaluation([])
        for direction in directions:
            bound = price_bound(market, direction.token_in, direction.token_out)
            if bound is not None:
                self._cross(market, self.candidates(direction, bound), result)
        return result

    def crossings_of(self, market: Market, order_ids: Iterable[str]) -> Evaluation:
        """The same, for some orders only (new ones: a limit may be reached at once)."""
        result = Evaluation([])
        orders = [self._orders.get(order_id) for order_id in order_ids]
        by_direction: dict[Direction, list[WaitingLimit]] = {}
        for order in orders:
            if isinstance(order, WaitingLimit) and order.order_id not in self._fired:
                by_direction.setdefault(order.direction, []).append(order)
        for direction, candidates in by_direction.items():
            bound = price_bound(market, direction.token_in, direction.token_out)
            if bound is not None:
                self._cross(market, [o for o in candidates if o.limit_price <= bound], result)
        return result

    def sniped(self, market: Market, event: PoolEvent,
               order_ids: Iterable[str] | None = None) -> list[Fire]:
        """The snipers (all of them, or `order_ids`) that `event` fires in `market`."""
        wanted = self._snipers.get(event.token_x.mint, set()) | self._snipers.get(
            event.token_y.mint, set())
        if order_ids is not None:
            wanted &= set(order_ids)
        fires = []
        for order_id in sorted(wanted - self._fired):
            order = self._orders[order_id]
            assert isinstance(order, WaitingSniper)
            price = self._sniper_price(market, order, event)
            if price is not None:
                fires.append(Fire(order, price, event))
        return fires

    def _cross(self, market: Market, candidates: list[WaitingLimit], into: Evaluation) -> None:
        prices: dict[tuple[Direction, int], Decimal | None] = {}
        for order in candidates:
            key = (order.direction, order.amount_in)
            if key not in prices:
                prices[key] = self._price(market, order.direction, order.amount_in)
                into.evaluated += 1
            price = prices[key]
            if price is not None and limit_reached(order.limit_price, price):
                into.fires.append(Fire(order, price))

    def _sniper_price(self, market: Market, order: WaitingSniper,
                      event: PoolEvent) -> Decimal | None:
        """The order's price if `event` meets its trigger, threshold and guard; else None."""
        if order.direction.token_out not in (event.token_x.mint, event.token_y.mint):
            return None
        if event.occurred_at < order.accepted_at or not _meets_trigger(order, event):
            return None
        wanted = event.token_x if event.token_x.mint == order.direction.token_out else (
            event.token_y)
        if wanted.decimals != order.token_out_decimals:
            return None  # not the token the order was placed for: never trade it
        price = self._price(market, order.direction, order.amount_in)
        if price is None or not within_max_price(order.max_price, price):
            return None
        return price

    def _follow_topology(self, market: Market) -> None:
        """Forget the paths of every direction when pools came or went (a tick only moves
        prices: the set of pools, and so every direction's paths, stays)."""
        topology = frozenset(pool.key for pool in market.pools)
        if topology != self._topology:
            self._topology, self._used = topology, {}

    def _pairs_used(self, market: Market, direction: Direction) -> frozenset[Pair]:
        """The pairs whose pools a route of `direction` may use (see `_follow_topology`)."""
        used = self._used.get(direction)
        if used is None:
            paths = candidate_paths(market, direction.token_in, direction.token_out)
            used = frozenset(Pair.of(a, b) for path in paths
                             for a, b in zip(path.mints, path.mints[1:]))
            self._used[direction] = used
        return used

    # --- indexes ------------------------------------------------------------------------------

    def _limit(self, order_id: str) -> WaitingLimit:
        order = self._orders[order_id]
        assert isinstance(order, WaitingLimit)
        return order

    def _index(self, order: Waiting) -> None:
        direction = order.direction
        if isinstance(order, WaitingLimit):
            insort(self._limits.setdefault(direction, []), (order.limit_price, order.order_id))
            for mint in (direction.token_in, direction.token_out):
                self._by_token.setdefault(mint, set()).add(direction)
        else:
            self._snipers.setdefault(direction.token_out, set()).add(order.order_id)

    def _unindex(self, order: Waiting) -> None:
        direction = order.direction
        if isinstance(order, WaitingSniper):
            holders = self._snipers[direction.token_out]
            holders.discard(order.order_id)
            if not holders:
                del self._snipers[direction.token_out]
            return
        entries = self._limits[direction]
        entry = (order.limit_price, order.order_id)
        del entries[bisect_left(entries, entry)]
        if not entries:
            del self._limits[direction]
            for mint in (direction.token_in, direction.token_out):
                self._by_token[mint].discard(direction)
                if not self._by_token[mint]:
                    del self._by_token[mint]


def _meets_trigger(order: WaitingSniper, event: PoolEvent) -> bool:
    """A listing meets both triggers when deep enough (a new pool crosses any threshold from
    nothing); a liquidity change meets the liquidity trigger when it crosses upwards."""
    if isinstance(event, PoolCreated):
        return liquidity_reached(order.min_liquidity_usd, event.liquidity_usd)
    return order.trigger is Trigger.LIQUIDITY and liquidity_crossed(
        order.min_liquidity_usd, event.liquidity_usd, event.previous_liquidity_usd)
