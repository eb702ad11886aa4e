"""Idempotency keys: one key always names one order, and reusing a key for another order is caught.

Consumes a client's key (`clientOrderId` or the `Idempotency-Key` header) and the fingerprint
of the validated request; produces the order id (a uuid5 of the owner and the key, so every
API instance, before and after a restart, derives the same id, and two owners' keys never
name the same order) and a verdict on a replay.

The id is what makes a retried POST safe everywhere: the order agent ignores an `ExecuteOrder`
for an order that already exists. `RecentKeys` is this process's memory of the fingerprints
it sent (bounded, lost on restart); what it has forgotten or never saw, the route asks the
read model (`api.order_records`: the terms the order was accepted with), so a key reused with
other terms is refused (422) on every instance and after a restart, once the projector has
the order. LIMITATION: between the first POST and its projection (milliseconds normally, the
projector's lag otherwise) another instance cannot tell; the order then keeps its FIRST terms
(the agent drops the duplicate command) and the second client gets the first order's id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from enum import Enum
from typing import Final
from uuid import UUID, uuid5

# Fixed forever: changing it would give every existing key a different order id.
ORDER_ID_NAMESPACE: Final = UUID("3b0d1d6e-8f0a-5c51-9a43-2f8d6b1e7c20")
# The keys of an owner (an API key id) live in a namespace of their own: an owner-less key
# (AUTH_MODE=off, and every order before auth) keeps the id it always had.
OWNED_ORDER_ID_NAMESPACE: Final = UUID("9c5e7d0a-41b2-5f3e-8a6d-0f1e2d3c4b5a")
DEFAULT_CAPACITY: Final = 100_000


def order_id_for(key: str, owner: str | None = None) -> str:
    """The order id of an owner's idempotency key: the same key, the same order, on every
    instance; another owner's same key, another order. A key id has no newline, so
    (owner, key) pairs never run together."""
    if owner is None:
        return str(uuid5(ORDER_ID_NAMESPACE, key))
    return str(uuid5(OWNED_ORDER_ID_NAMESPACE, f"{owner}\n{key}"))


def execute_command_id(order_id: str) -> str:
    """The command id of an order's `ExecuteOrder`: a retried POST sends the very same command."""
    return str(uuid5(ORDER_ID_NAMESPACE, f"{order_id}/execute"))


class Replay(Enum):
    NEW = "new"  # not seen (by this process, nor in the read model): produce the command
    SAME = "same"  # seen with the same terms: the command is in Kafka already
    CONFLICT = "conflict"  # seen with different terms: refuse


class RecentKeys:
    """The fingerprints of the last `capacity` keys whose command Kafka acknowledged."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._seen: OrderedDict[str, Hashable] = OrderedDict()

    def check(self, key: str, fingerprint: Hashable) -> Replay:
        """`key`: the order id of the idempotency key (already scoped by its owner)."""
        seen = self._seen.get(key)
        if seen is None:
            return Replay.NEW
        self._seen.move_to_end(key)
        return Replay.SAME if seen == fingerprint else Replay.CONFLICT

    def remember(self, key: str, fingerprint: Hashable) -> None:
        """Call only once the command is durably in Kafka: a failed send must stay retryable."""
        self._seen[key] = fingerprint
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
