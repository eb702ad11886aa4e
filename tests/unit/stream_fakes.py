"""In-memory fakes of the stream workers' ports (`streams.ports`) for the application layer's
unit tests: an outbox that records what it was given and answers with futures the test
settles, a clock the test moves, a partition's states, venues that answer at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.market_events import MarketEvent
from domain.orders.commands import Command, ExecuteOrder
from tests import orders_support
from domain.orders.events import Event
from domain.orders.status import OrderStatus, OrderType
from domain.tokens import SOL, USDC
from domain.work import Work
from streams.order_states import PartitionStates
from streams.ports import Delivery

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Sent:
    kind: str  # events | work | command
    value: Any
    partition: int | None
    delivery: Delivery


@dataclass
class FakeOutbox:
    """Records every produce. Deliveries succeed at once unless `ack_manually` is set (then
    the test settles them) or the next ones are told to fail (`fail_next`)."""

    ack_manually: bool = False
    fail_next: int = 0  # this many of the next produces fail (enqueue raises)
    reject_next: int = 0  # this many of the next deliveries fail (the broker refuses)
    sent: list[Sent] = field(default_factory=list)
    statuses: list[OrderStatus] = field(default_factory=list)  # each event's, in order
    epochs: list[int | None] = field(default_factory=list)  # each event's writer epoch

    async def events(self, partition: int, events: Sequence[Event],
                     statuses: Sequence[OrderStatus], epoch: int | None = None,
                     heads: dict[str, bytes] | None = None) -> list[Delivery]:
        self.statuses.extend(statuses)
        self.epochs.extend([epoch] * len(events))
        return [self._record("events", event, partition) for event in events]

    async def work(self, work: Work) -> Delivery:
        return self._record("work", work, None)

    async def command(self, command: Command) -> Delivery:
        return self._record("command", command, None)

    async def market(self, events: Sequence[MarketEvent]) -> None:
        await asyncio.gather(*(self._record("market", event, None) for event in events))

    def _record(self, kind: str, value: Any, partition: int | None) -> Delivery:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("producer unavailable")
        delivery: Delivery = asyncio.get_running_loop().create_future()
        self.sent.append(Sent(kind, value, partition, delivery))
        if self.reject_next:
            self.reject_next -= 1
            delivery.set_exception(ConnectionError("record refused by the broker"))
        elif not self.ack_manually:
            delivery.set_result(None)
        return delivery

    def of(self, kind: str) -> list[Any]:
        return [s.value for s in self.sent if s.kind == kind]

    def settle_all(self) -> None:
        for s in self.sent:
            if not s.delivery.done():
                s.delivery.set_result(None)


class FakeStates:
    """The folded states of each partition, held in plain dicts (no event store)."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionStates] = {}
        self.reloads: list[int] = []
        self.stored: dict[int, PartitionStates] = {}  # what a reload folds (the test sets it)

    async def ready(self, partition: int) -> PartitionStates:
        return self.partitions.setdefault(partition, PartitionStates())

    def revoke(self, partitions: Iterable[int]) -> set[str]:
        return {order for p in partitions
                for order in self.partitions.pop(p, PartitionStates()).orders}

    def reload(self, partition: int, after: Sequence[Delivery]) -> set[str]:
        self.reloads.append(partition)
        dropped = self.partitions.pop(partition, PartitionStates())
        self.partitions[partition] = self.stored.get(partition, PartitionStates())
        return set(dropped.orders)


class InstantVenues:
    def __init__(self) -> None:
        self.asked = 0

    async def all_venues(self) -> None:
        self.asked += 1


def execute_order(order_id: str, command_id: str | None = None, *,
                  amount_in: int = 1_500_000_000, **overrides: Any) -> ExecuteOrder:
    fields: dict[str, Any] = dict(
        command_id=command_id or f"execute-{order_id}", order_id=order_id, issued_at=T0,
        token_in=SOL.mint, token_out=USDC.mint,
        token_in_symbol="SOL", token_out_symbol="USDC", token_in_decimals=9,
        token_out_decimals=6, amount_in=amount_in, slippage_bps=100,
    )
    order_type = overrides.pop("order_type", OrderType.MARKET)
    return orders_support.execute_order(order_type, **(fields | overrides))
