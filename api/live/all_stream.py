"""`WS /api/orders/stream/all[?status=..&type=..&token=..]`: every order's events, live.

Consumes the fan-out; produces the same messages as the per-order streams, for every order,
from the moment of connection (no catch-up: history is `GET /api/orders`). Each filter takes
a comma-separated list; a message passes when it matches every filter given:
  status  the order's status after the event (pending, routing, ... confirmed)
  type    the event type (OrderAccepted, RouteSelected, ...)
  token   a token symbol or mint on either side of the order (known for orders accepted
          while this process ran; older orders do not match a token filter)
Filters run in the fan-out before queueing, so filtered-out events cost a subscriber nothing.
A viewer that is not an admin sees only its own orders: those whose OrderAccepted this
process saw (the fan-out's recent cache remembers the owner); an order begun earlier does not
show here, as with the token filter. A `token` value shaped like an API key is the
WebSocket's credential (`api.auth.guard`), not a filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from api.auth.keys import KEY_PREFIX, Principal
from api.live.connection import BAD_REQUEST, Closing, Connection, StreamClosed
from api.live.fanout import Fanout
from api.live.messages import EVENT_CLASSES, OrderMessage
from domain.orders.status import OrderStatus

_STATUSES = frozenset(status.value for status in OrderStatus)


@dataclass(frozen=True, slots=True)
class Filters:
    """What an all-orders subscriber wants; an empty set means "any"."""

    statuses: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()
    viewer: Principal | None = None  # None: every order (an admin)

    @classmethod
    def parse(cls, query: Mapping[str, str], viewer: Principal | None = None) -> Filters:
        """From the query string; raises `StreamClosed` (4400) naming a bad value."""
        statuses = frozenset(value.lower() for value in _values(query, "status"))
        types = _values(query, "type")
        tokens = frozenset(t for t in _values(query, "token") if not t.startswith(KEY_PREFIX))
        _check("status", statuses, _STATUSES)
        _check("type", types, frozenset(EVENT_CLASSES))
        # Symbols match whatever their case; mints are case-sensitive base58, kept as given.
        admin = viewer is None or viewer.sees(None)
        return cls(statuses, types, tokens | {token.upper() for token in tokens},
                   None if admin else viewer)

    def matches(self, message: OrderMessage) -> bool:
        status = message.status.value if message.status else None
        return ((self.viewer is None or self.viewer.sees(message.owner))
                and (not self.statuses or status in self.statuses)
                and (not self.types or message.type in self.types)
                and (not self.tokens or not self.tokens.isdisjoint(message.tokens)))


@dataclass(frozen=True, slots=True)
class AllOrdersStream:
    fanout: Fanout
    filters: Filters

    async def __call__(self, connection: Connection) -> Closing:
        await self.fanout.ready()
        with self.fanout.all_feed(self.filters.matches) as feed:
            connection.watch(feed)
            while True:  # ends when the client leaves, is too slow, or the server stops
                for message in [await feed.take(), *feed.drain()]:
                    await connection.send(message.text)


def _values(query: Mapping[str, str], name: str) -> frozenset[str]:
    parts = (part.strip() for part in query.get(name, "").split(","))
    return frozenset(part for part in parts if part)


def _check(name: str, values: frozenset[str], allowed: frozenset[str]) -> None:
    unknown = sorted(values - allowed)
    if unknown:
        raise StreamClosed(BAD_REQUEST, f"unknown {name}: {', '.join(unknown)[:80]}")
