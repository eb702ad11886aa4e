"""What a parent order (twap, dca) knows of its schedule and its children: the `parent`
part of its `OrderState`, folded by `parent_evolve`. Pure values.

The amounts are base units; the average price is derived where the token decimals are known
(`api.order_views`, `tokens.unit_price`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.orders.status import CANCELLABLE, TERMINAL, OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildView:
    """One released slice as its child's reports told it (seq 0: no report yet)."""

    child_id: str
    slice_index: int
    amount_in: int
    seq: int = 0
    status: OrderStatus | None = None
    amount_out: int | None = None

    @property
    def live(self) -> bool:
        return self.status not in TERMINAL

    @property
    def cancellable(self) -> bool:
        """Could a cancel still end it? (Not reported yet: maybe, so it is sent one.)"""
        return self.status is None or self.status in CANCELLABLE

    @property
    def filled(self) -> bool:
        return self.status is OrderStatus.CONFIRMED


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentProgress:
    slices: tuple[int, ...]  # the amount of each slice the schedule releases
    started_at: datetime  # slice i is due at started_at + i * interval
    released: int = 0
    skipped: int = 0
    children: tuple[ChildView, ...] = ()
    cancel_requested: bool = False

    @property
    def next_slice(self) -> int:
        return self.released + self.skipped

    @property
    def scheduled_done(self) -> bool:
        """No slice is left to release: all were decided, or a cancel stopped the rest."""
        return self.cancel_requested or self.next_slice >= len(self.slices)

    @property
    def live_children(self) -> tuple[ChildView, ...]:
        return tuple(child for child in self.children if child.live)

    @property
    def finished(self) -> bool:
        """Nothing will happen any more: the parent's terminal event is due."""
        return self.scheduled_done and not self.live_children

    @property
    def amount_in_filled(self) -> int:
        return sum(child.amount_in for child in self.children if child.filled)

    @property
    def amount_out(self) -> int:
        return sum(child.amount_out or 0 for child in self.children if child.filled)

    def child(self, child_id: str) -> ChildView | None:
        for child in self.children:
            if child.child_id == child_id:
                return child
        return None
