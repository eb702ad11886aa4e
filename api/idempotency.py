"""Idempotency keys: one key always names one order, and reusing a key for another order is caught.

Consumes a client's key (`clientOrderId` or the `Idempotency-Key` header) and the fingerprint
of the validated request; produces the order id (a uuid5 of the key, so every API instance,
before and after a restart, derives the same id) and a verdict on a replay.

The id is what makes a retried POST safe everywhere: the order agent ignores an `ExecuteOrder`
for an order that already exists. The fingerprint memory only adds the niceties of a single
process: a replay answered without producing again, and a 409 for a key reused with different
terms. LIMITATION: that memory is in-process, bounded (oldest keys are forgotten first) and
lost on restart, so a conflicting reuse that reaches another API instance, or comes after
eviction or a restart, is not detected: the client then gets the original order id with 201
and the order keeps its FIRST terms (the agent drops the duplicate command). A durable check
needs the terms of the order from the read model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from enum import Enum
from typing import Final
from uuid import UUID, uuid5

# Fixed forever: changing it would give every existing key a different order id.
ORDER_ID_NAMESPACE: Final = UUID("3b0d1d6e-8f0a-5c51-9a43-2f8d6b1e7c20")
DEFAULT_CAPACITY: Final = 100_000


def order_id_for(key: str) -> str:
    """The order id of an idempotency key: the same key, the same order, on every instance."""
    return str(uuid5(ORDER_ID_NAMESPACE, key))


def execute_command_id(order_id: str) -> str:
    """The command id of an order's `ExecuteOrder`: a retried POST sends the very same command."""
    return str(uuid5(ORDER_ID_NAMESPACE, f"{order_id}/execute"))


class Replay(Enum):
    NEW = "new"  # not seen by this process (or forgotten): produce the command
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
