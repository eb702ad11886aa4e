"""Synthetic but realistic order histories, made by the pure order aggregate itself.

Consumes a seed (and a start time); produces, per order, the events the order agent would
append: commands are fed to `decide`, each decision is folded with `evolve`, so every history
obeys the transition table, the per-order `seq` and the attempt rules. Used by the projection
tests and the projection benchmark, which need millions of valid events without running the
stream workers.

Outcomes are mixed like a busy day: most orders confirm, some fail after retries, some are
cancelled early, some answer a late cancel, some are re-driven by the watchdog.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypedDict

from domain.market import Market
from domain.orders import (
    AttemptFailed,
    CancelOrder,
    Command,
    Event,
    ExecuteOrder,
    ExecutionPolicy,
    OrderState,
    RetryDue,
    RouteFound,
    StallCheck,
    SubmissionSucceeded,
    SwapConfirmed,
    decide,
    evolve,
    initial_state,
)
from domain.orders.status import AttemptStage
from domain.orders.terms import MarketTerms
from domain.quotes import RoutingDecision
from domain.routing import best_route
from domain.tokens import SOL, USDC, USDT, Token

POLICY: Final = ExecutionPolicy(max_attempts=3, retry_delays_ms=(1000, 2000))
# (token in, token out, amount in base units): a few orders shapes, routed once each.
_SHAPES: Final = (
    (SOL, USDC, 1_500_000_000),
    (USDC, SOL, 250_000_000),
    (SOL, USDT, 20_000_000_000),
    (USDT, USDC, 1_000_000_000),
)


@dataclass(frozen=True, slots=True)
class _Shape:
    token_in: Token
    token_out: Token
    amount_in: int
    decision: RoutingDecision


class HistoryMaker:
    """Deterministic for a seed: the same seed makes the same orders and events."""

    def __init__(self, seed: int = 7, start: datetime | None = None,
                 orders_per_s: float = 1000.0) -> None:
        self._rng = random.Random(seed)
        self._start = start or datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
        self._spacing = timedelta(seconds=1 / orders_per_s)
        self._made = 0
        self._clock = self._start
        market = Market.default(seed)
        self._shapes = [
            _Shape(t_in, t_out, amount, best_route(market, t_in.mint, t_out.mint, amount))
            for t_in, t_out, amount in _SHAPES
        ]

    def orders(self, count: int) -> Iterator[list[Event]]:
        """`count` order histories, each a list of events in seq order."""
        for _ in range(count):
            yield self.order()

    def order(self) -> list[Event]:
        """One order's whole history; its outcome drawn at random. Orders start
        `1/orders_per_s` apart and each takes its own time, so histories overlap in time."""
        self._clock = self._start + self._spacing * self._made
        self._made += 1
        order_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        shape = self._rng.choice(self._shapes)
        driver = _Driver(order_id, self._tick)
        driver.send(_execute(order_id, shape, self._tick(), self._rng))
        roll = self._rng.random()
        if roll < 0.04:
            driver.send(CancelOrder(**driver.meta(), reason="changed my mind"))
            return driver.events
        if roll < 0.06:
            driver.send(StallCheck(**driver.meta(), stalled_seq=driver.state.seq))
        failures = 3 if roll < 0.10 else (1 if roll < 0.20 else 0)
        self._attempts(driver, shape, failures, late_cancel=roll > 0.97)
        return driver.events

    def _attempts(self, driver: _Driver, shape: _Shape, failures: int, late_cancel: bool) -> None:
        """Route, submit and confirm; the first `failures` attempts expire before landing."""
        for attempt in range(1, POLICY.max_attempts + 1):
            driver.send(RouteFound(**driver.meta(), attempt=attempt, decision=shape.decision))
            if late_cancel:
                driver.send(CancelOrder(**driver.meta(), reason="too slow"))
            signature = driver.state.signature or ""
            slot = 300_000_000 + self._rng.randrange(1_000_000)
            driver.send(SubmissionSucceeded(**driver.meta(), attempt=attempt,
                                            signature=signature, slot=slot))
            if attempt > failures:
                amount_out = shape.decision.amount_out * (10_000 - self._rng.randrange(20))
                amount_out //= 10_000
                driver.send(SwapConfirmed(**driver.meta(), attempt=attempt, signature=signature,
                                          amount_out=amount_out, slot=slot + 2))
                return
            driver.send(AttemptFailed(
                **driver.meta(), attempt=attempt, stage=AttemptStage.CONFIRM,
                error_code="blockhash_expired", transient=True,
                message="the transaction expired before landing"))
            if driver.state.retry_pending is None:
                return  # failed for good
            driver.send(RetryDue(**driver.meta(), attempt=attempt + 1))

    def _tick(self) -> datetime:
        """The clock moves 1..400 ms between two commands (microsecond precision, as Avro)."""
        self._clock += timedelta(microseconds=self._rng.randrange(1_000, 400_000))
        return self._clock


class _Meta(TypedDict):
    """The envelope of a command sent to the order."""

    command_id: str
    order_id: str
    issued_at: datetime
    correlation_id: str | None


class _Driver:
    """Feeds commands to one order's aggregate and keeps the events it decides."""

    def __init__(self, order_id: str, clock: Callable[[], datetime]) -> None:
        self.state: OrderState = initial_state(order_id)
        self.events: list[Event] = []
        self._clock = clock
        self._count = 0

    def meta(self) -> _Meta:
        self._count += 1
        order_id = self.state.order_id
        return {"command_id": f"{order_id}/c{self._count}", "order_id": order_id,
                "issued_at": self._clock(), "correlation_id": self.state.correlation_id}

    def send(self, command: Command) -> None:
        for event in decide(self.state, command, now=command.issued_at, policy=POLICY):
            self.state = evolve(self.state, event)
            self.events.append(event)


def _execute(order_id: str, shape: _Shape, now: datetime, rng: random.Random) -> ExecuteOrder:
    client_order_id = f"client-{rng.getrandbits(48):012x}" if rng.random() < 0.3 else None
    return ExecuteOrder(
        command_id=f"{order_id}/execute", order_id=order_id, issued_at=now,
        terms=MarketTerms(
            token_in=shape.token_in.mint, token_out=shape.token_out.mint,
            token_in_symbol=shape.token_in.symbol, token_out_symbol=shape.token_out.symbol,
            token_in_decimals=shape.token_in.decimals,
            token_out_decimals=shape.token_out.decimals,
            amount_in=shape.amount_in, slippage_bps=rng.choice((10, 50, 100)),
            client_order_id=client_order_id,
        ),
    )


def interleaved(histories: Iterable[list[Event]]) -> list[Event]:
    """Every event of `histories` in time order, as the event store would hold them (one
    order's events stay in seq order: its clock never goes back)."""
    events = [event for history in histories for event in history]
    events.sort(key=lambda event: event.occurred_at)  # stable: seq order kept on equal times
    return events
