"""Deterministic identities of the messages the order aggregate produces.

Ids are name-based (uuid5), never random: an event re-decided after a crash, or a timer
scheduled twice, gets the same id, so every consumer can deduplicate on it.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID, uuid5

# Fixed forever: changing it would change the id of every event ever written.
NAMESPACE: Final = UUID("f4805d40-1e51-416e-9ce3-c2f6c375ab49")


def event_id(order_id: str, seq: int) -> str:
    """The id of event `seq` of `order_id`."""
    return str(uuid5(NAMESPACE, f"{order_id}/{seq}"))


def retry_due_id(order_id: str, attempt: int) -> str:
    """The command id of the timer that starts `attempt` after its backoff."""
    return str(uuid5(NAMESPACE, f"{order_id}/retry-due/{attempt}"))


def stall_check_id(order_id: str, stalled_seq: int) -> str:
    """The command id of the watchdog timer armed when event `stalled_seq` was appended."""
    return str(uuid5(NAMESPACE, f"{order_id}/stall-check/{stalled_seq}"))


def expiry_due_id(order_id: str) -> str:
    """The command id of the timer that expires a GTD order (it has one expiry, ever)."""
    return str(uuid5(NAMESPACE, f"{order_id}/expiry-due"))
