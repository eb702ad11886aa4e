"""The fan-out's memory of recently active orders: their last events and tokens.

Consumes every live event once; serves (1) the order's tokens, for the all-orders stream's
token filter (only OrderAccepted names them), and (2) the last few messages of an order, so a
stream that connects while the projector lags can close the gap without waiting for
PostgreSQL. (Each event carries its status in its envelope: none is remembered to fold it.)
Bounded twice: least-recently-active orders are evicted, and each order keeps only its last
`per_order` messages. Nothing here is authoritative: the read model is.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.live.messages import OrderMessage

# A message, or what it is made of when nobody wanted it as it arrived (see `messages_of`).
Entry = OrderMessage | Any
Materialise = Callable[[Any], OrderMessage | None]


@dataclass(slots=True)
class _Order:
    tokens: frozenset[str] = frozenset()
    owner: str | None = None  # from its OrderAccepted, if this process saw it
    messages: deque[Entry] = field(default_factory=deque)
    accepted: Any = None  # its OrderAccepted, raw, until tokens or owner are asked for


class RecentEvents:
    """An LRU of orders, each with its last messages. `materialise` makes a message of a
    raw entry (see `remember_raw`)."""

    def __init__(self, max_orders: int, per_order: int,
                 materialise: Materialise | None = None) -> None:
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._max_orders = max_orders
        self._per_order = per_order
        self._materialise = materialise

    def tokens_of(self, order_id: str) -> frozenset[str]:
        order = self._orders.get(order_id)
        return frozenset() if order is None else self._learnt(order).tokens

    def owner_of(self, order_id: str) -> str | None:
        order = self._orders.get(order_id)
        return None if order is None else self._learnt(order).owner

    def remember(self, message: OrderMessage, tokens: frozenset[str] = frozenset()) -> None:
        """Record `message` as the order's latest; `tokens` and the owner when the event
        names them (an OrderAccepted)."""
        order = self._entry(message.order_id)
        order.messages.append(message)
        if tokens:
            order.tokens = tokens
        if message.owner is not None:
            order.owner = message.owner

    def remember_raw(self, order_id: str, raw: Any, *, accepted: bool = False) -> None:
        """Record the order's latest event undecoded: `messages_of` makes it a message if
        anyone ever asks (most live events are never asked for). The order's OrderAccepted
        (`accepted`) is also kept aside, beyond the last `per_order` events: its tokens and
        owner are learnt from it when first asked for."""
        order = self._entry(order_id)
        order.messages.append(raw)
        if accepted:
            order.accepted = raw

    def messages_of(self, order_id: str) -> list[OrderMessage]:
        """The order's last messages, oldest first; raw entries are made messages (once: the
        message replaces them), or left out if they cannot be."""
        order = self._orders.get(order_id)
        if order is None:
            return []
        found: list[OrderMessage] = []
        for index, entry in enumerate(order.messages):
            if not isinstance(entry, OrderMessage):
                if entry is order.accepted:
                    self._learnt(order)  # decodes it once, for the tokens and owner too
                    entry = order.messages[index]
                entry = self._made(entry)
                if entry is None:
                    continue
                order.messages[index] = entry
            found.append(entry)
        return found

    def _learnt(self, order: _Order) -> _Order:
        """`order` with the tokens and owner of its raw OrderAccepted learnt, if it has one."""
        if order.accepted is not None:
            message = self._made(order.accepted)
            if message is not None:
                order.tokens, order.owner = message.tokens, message.owner
                for index, entry in enumerate(order.messages):
                    if entry is order.accepted:
                        order.messages[index] = message
            order.accepted = None
        return order

    def _made(self, raw: Any) -> OrderMessage | None:
        if isinstance(raw, OrderMessage):
            return raw
        return self._materialise(raw) if self._materialise is not None else None

    def _entry(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            order = self._orders[order_id] = _Order(messages=deque(maxlen=self._per_order))
            if len(self._orders) > self._max_orders:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(order_id)
        return order

    def __len__(self) -> int:
        return len(self._orders)
