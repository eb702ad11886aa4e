"""Acks the records of each source partition in offset order, once what each caused is durable.

Consumes, per record, the future of everything the record caused and the record's ack: for
`orders.commands` its `Decided.settled`, for a stage's work item the task it started (a
stage's records are keyed by (topic, partition)), or a dead letter's delivery. Calls the acks
strictly in offset order per partition, each only when its own outcome and every earlier
one's are confirmed. At the first outcome that failed it stops acking that partition and reports the
failed record's offset once (`on_failure`); `reset` starts the partition afresh after a rewind
or a revocation.

Why in order and never past a failure: Faust commits the highest run of consecutive acked
offsets, but `Consumer._new_offset` (faust-streaming 0.15.3) only checks the head of that run
against the committed offset when that offset is truthy, and lets a single missing offset
through (`min(acked) - committed > 1`). A hole in the acks can therefore be committed over. With
acks that never run ahead of an unconfirmed record there is no hole to skip.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from streams.ports import Delivery, failure_of

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Hashable)  # a source partition: its number, or (topic, number)
OnFailure = Callable[[P, int, BaseException], None]


@dataclass(slots=True)
class _Pending:
    offset: int
    outcome: Delivery | None
    ack: Callable[[], object]


class AckChain(Generic[P]):
    def __init__(self, on_failure: OnFailure[P]) -> None:
        self._on_failure = on_failure
        self._pending: dict[P, deque[_Pending]] = {}
        self._stopped: set[P] = set()

    def track(self, partition: P, offset: int, outcome: Delivery | None,
              ack: Callable[[], object]) -> None:
        """Ack `offset` of `partition` once `outcome` (None: nothing produced) succeeded."""
        self._pending.setdefault(partition, deque()).append(_Pending(offset, outcome, ack))
        if outcome is not None:  # behind a failure nobody asks it: asyncio would log it
            outcome.add_done_callback(failure_of)
        if outcome is None or outcome.done():
            self._advance(partition)
        else:
            outcome.add_done_callback(lambda _: self._advance(partition))

    def reset(self, partition: P) -> list[Delivery]:
        """Forget the partition's records (they will be consumed again); returns the
        outcomes still on their way."""
        self._stopped.discard(partition)
        pending = self._pending.pop(partition, deque())
        return [p.outcome for p in pending if p.outcome is not None and not p.outcome.done()]

    def waiting(self, partition: P) -> int:
        return len(self._pending.get(partition, ()))

    def _advance(self, partition: P) -> None:
        queue = self._pending.get(partition)
        while queue and partition not in self._stopped:
            head = queue[0]
            if head.outcome is not None:
                if not head.outcome.done():
                    return
                error = failure_of(head.outcome)
                if error is not None:
                    self._stopped.add(partition)
                    self._on_failure(partition, head.offset, error)
                    return
            queue.popleft()
            head.ack()
