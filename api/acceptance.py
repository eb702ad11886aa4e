"""When an edge command counts, and what the edge may promise about it (issue 10).

Consumes the moment a request arrives, the accept budget and the broker's acknowledgement of
the command (`RecordMetadata`); produces the command's accept-by deadline and the verdict the
HTTP answer states. The writer applies the same rule to the same two numbers (the record's
`acceptBy` and its LogAppendTime, `domain.orders.decide`), so the edge's answer is the truth:

- appended at or before acceptBy: the writer decides it (201 / 202);
- appended after it: the writer refuses it, so it is provably not executed (503);
- no usable acknowledgement: unknown (504) — the broker may have appended it in time and the
  acknowledgement was lost; it counts if and only if it was appended by acceptBy.

A record without a broker append time (the topic is on CreateTime) is judged by nobody: the
writer decides it as before the deadline existed, and so the edge answers 201 once acked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from aiokafka.structs import RecordMetadata

from domain.orders.commands import from_millis, to_millis
from infra.topics import LOG_APPEND_TIME


class Verdict(Enum):
    ACCEPTED = "accepted"  # the writer decides it
    LATE = "late"  # appended after its deadline: the writer refuses it
    UNKNOWN = "unknown"  # acknowledged without its coordinates: it may count or not


def accept_by(now: datetime, budget: timedelta) -> datetime:
    """The deadline of a command issued `now`, in whole milliseconds (its wire precision)."""
    return from_millis(to_millis(now + budget))


def verdict(deadline: datetime, metadata: RecordMetadata) -> Verdict:
    """What the acknowledgement of a command with `deadline` says about its fate."""
    if metadata.offset < 0:
        # A retried batch the broker found appended before, without its coordinates
        # (DuplicateSequenceNumber): appended, but when is not told.
        return Verdict.UNKNOWN
    if metadata.timestamp_type != LOG_APPEND_TIME:
        return Verdict.ACCEPTED
    return Verdict.LATE if metadata.timestamp > to_millis(deadline) else Verdict.ACCEPTED
