"""The gapless merge of one order's events from several sources, pure (no I/O, no clock).

Consumes `OrderMessage`s in any order and with duplicates, from the fan-out's recent cache,
the live feed and the read model; produces them in seq order, each exactly once, with no
gap, stopping after the terminal event. Each message carries the status its event's writer
recorded (see `api.live.messages`): nothing is folded again here.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.live.messages import OrderMessage
from domain.orders.status import TERMINAL, OrderStatus


class OrderTimeline:
    """Delivery state of one stream: what was sent, what waits behind a gap."""

    def __init__(self, after_seq: int = 0) -> None:
        self.next_seq = after_seq + 1
        self.status: OrderStatus | None = None  # after the last delivered (or resumed) event
        self.last: OrderMessage | None = None  # the last delivered or resumed-after message
        self.finished = False  # the terminal event was delivered (or resumed after)
        self._pending: dict[int, OrderMessage] = {}

    def add(self, messages: Iterable[OrderMessage]) -> None:
        """Buffer messages not delivered yet; the one just before `next_seq` sets the status."""
        for message in messages:
            if message.seq >= self.next_seq:
                self._pending.setdefault(message.seq, message)
            elif message.seq == self.next_seq - 1 and self.last is None:
                self._resume_after(message)

    def take_ready(self) -> list[OrderMessage]:
        """The messages that can go out now: contiguous from `next_seq`, up to the terminal."""
        ready: list[OrderMessage] = []
        while not self.finished and self.next_seq in self._pending:
            message = self._pending.pop(self.next_seq)
            ready.append(message)
            self._advance(message)
        return ready

    @property
    def known(self) -> bool:
        """Has any event of the order been seen (delivered, buffered or resumed after)?"""
        return self.last is not None or bool(self._pending)

    @property
    def has_gap(self) -> bool:
        """Are messages waiting for an earlier one that no source has given yet?"""
        return not self.finished and bool(self._pending)

    def _resume_after(self, message: OrderMessage) -> None:
        self.last, self.status = message, message.status
        self.finished = message.status in TERMINAL

    def _advance(self, message: OrderMessage) -> None:
        self.next_seq = message.seq + 1
        self._resume_after(message)
        if self.finished:
            self._pending.clear()
