"""The writer fence of the event store: which records of one `orders.events` partition count.

Consumes, per record in offset order, its offset and Kafka headers; produces a verdict: a
CLAIM (a writer took the partition over; not an event), an EVENT to read, or STALE (appended
by a deposed writer after its successor's claim: not part of the history, every reader drops
it). No I/O. Part of the record contract beside the codec (headers, not schema fields): the
worker's fold, the projector, the API's fan-out, `oee replay` and the fault suite's auditor all
judge records with this one rule.

Why: a worker frozen past its session (GC pause, SIGSTOP, a VM stall) wakes up still believing
it owns its partitions and appends what it decided on a stale fold, with `seq`s its successor
also uses. Kafka cannot stop it (the Faust producer is not transactional, docs/pitfalls.md 3),
so the successor announces itself in the log: on taking a partition it appends a claim record
and folds up to it, and stamps every event it writes with its epoch, the claim's offset. An
event whose epoch is older than the last claim before it comes from a deposed writer. Records
without an epoch header (written before the fence existed, or by a tool) are not fenced: they
count, and what cannot be read is quarantined as before.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

EPOCH_HEADER: Final = "oee-writer-epoch"  # on every event: the writer's claim offset (ASCII)
CLAIM_HEADER: Final = "oee-claim"  # on a claim record (no key; value: schemas.claims): who
NO_EPOCH: Final = -1

Headers = Iterable[tuple[str, bytes]]


class Verdict(enum.Enum):
    CLAIM = "claim"
    EVENT = "event"
    STALE = "stale"


def epoch_headers(epoch: int) -> list[tuple[str, bytes]]:
    return [(EPOCH_HEADER, str(epoch).encode())]


def claim_headers(claimant: str) -> list[tuple[str, bytes]]:
    return [(CLAIM_HEADER, claimant.encode())]


class Fence:
    """The fence state of ONE partition read in offset order: the epoch of its current writer.

    `epoch` starts where the reader's stored position left it (NO_EPOCH from offset 0)."""

    def __init__(self, epoch: int = NO_EPOCH) -> None:
        self.epoch = epoch

    def judge(self, offset: int, headers: Headers | None) -> Verdict:
        found = dict(headers or ())
        if CLAIM_HEADER in found:
            self.epoch = max(self.epoch, offset)
            return Verdict.CLAIM
        raw = found.get(EPOCH_HEADER)
        if raw is None:  # not from a fenced writer (history before the fence, a tool): counts,
            return Verdict.EVENT  # and a bad one is quarantined like any other bad record
        epoch = _parse(raw)
        if epoch < self.epoch:
            return Verdict.STALE
        # A reader that resumed after the claim learns the epoch from its writer's events.
        self.epoch = epoch
        return Verdict.EVENT


def _parse(raw: bytes) -> int:
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return NO_EPOCH - 1  # unreadable: older than anything, never counted after a claim
