"""Deterministic identities of the messages the order aggregate produces.

Ids are name-based (uuid5), never random: an event re-decided after a crash, or a timer
scheduled twice, gets the same id, so every consumer can deduplicate on it.
"""

from __future__ import annotations

from hashlib import sha1
from typing import Final
from uuid import UUID

# Fixed forever: changing it would change the id of every event ever written.
NAMESPACE: Final = UUID("f4805d40-1e51-416e-9ce3-c2f6c375ab49")
_NAMESPACE_BYTES: Final = NAMESPACE.bytes


def named_id(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, without building a `UUID` on the way: the writer
    makes several per decision, and uuid5's object was a third of its cost (held equal to
    uuid5 by tests/unit/test_order_ids.py)."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id(order_id: str, seq: int) -> str:
    """The id of event `seq` of `order_id`."""
    return named_id(f"{order_id}/{seq}")


def retry_due_id(order_id: str, attempt: int) -> str:
    """The command id of the timer that starts `attempt` after its backoff."""
    return named_id(f"{order_id}/retry-due/{attempt}")


def stall_check_id(order_id: str, stalled_seq: int) -> str:
    """The command id of the watchdog timer armed when event `stalled_seq` was appended."""
    return named_id(f"{order_id}/stall-check/{stalled_seq}")


def expiry_due_id(order_id: str) -> str:
    """The command id of the timer that expires a GTD order (it has one expiry, ever)."""
    return named_id(f"{order_id}/expiry-due")


# --- parent orders (twap, dca) ----------------------------------------------------------------


def child_id(parent_id: str, slice_index: int) -> str:
    """The id of the market order that executes slice `slice_index` of a parent: released
    twice (a re-decided SliceReleased, a re-sent ExecuteOrder), it is still one order."""
    return named_id(f"{parent_id}/slice/{slice_index}")


def slice_due_id(parent_id: str, slice_index: int) -> str:
    """The command id of the timer that releases (or skips) slice `slice_index`."""
    return named_id(f"{parent_id}/slice-due/{slice_index}")


def child_execute_id(child: str) -> str:
    """The command id of a child's ExecuteOrder (its correlation id)."""
    return named_id(f"{child}/execute")


def child_cancel_id(child: str) -> str:
    """The command id of the CancelOrder a cancelled parent sends its child."""
    return named_id(f"{child}/parent-cancel")


def child_report_id(parent_id: str, child: str, child_seq: int) -> str:
    """The command id of a child's report to its parent of its history up to `child_seq`."""
    return named_id(f"{parent_id}/child/{child}/{child_seq}")


def parent_finish_id(parent_id: str, seq: int) -> str:
    """The command id of the timer that ends a parent whose last decision was cut short."""
    return named_id(f"{parent_id}/finish/{seq}")
