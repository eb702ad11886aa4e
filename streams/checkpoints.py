"""The writer's periodic chain checkpoints: per partition, the Merkle root of every order's head.

Consumes the partition's heads once folded (`seed`: the fold's heads, as of the last record it
read) and each appended event's hash with its delivery (`track`); produces a `Checkpoint`
(`schemas.checkpoints`) every `every_events` confirmed events or, when some arrived, every
`every_s` seconds (`tick`), handed to `publish` (the shell writes it to `orders.checkpoints`
and logs it). Only what the broker confirmed counts, so a checkpoint never covers an event
the store may not have; confirmations of one partition arrive in offset order from the
writer's producer, and after a refused delivery the partition writes no checkpoint until it
is folded and seeded again.

The root is cut into id ranges (`schemas.chain.RangedHeads`): a checkpoint recomputes the
ranges whose heads changed since the last one, not a tree over every order of the history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.chain import RANGES, RangedHeads
from schemas.checkpoints import Checkpoint
from streams.ports import Delivery, failure_of
from streams.terminal_ids import TerminalIds

log = logging.getLogger(__name__)

Publish = Callable[[Checkpoint], None]
# What a step of recomputing id ranges may cost (a range counts one, plus one per order in
# it; ~7 µs each): a fold marks all 4,096, which a partition of a few thousand orders
# recomputes in one step, and one of 10 M events' history (~115 k orders) in 15 steps of
# ~55 ms of the event loop, one a second or on each due check.
REFRESH_BUDGET = 8_000


@dataclass(slots=True)
class _Partition:
    generation: int
    epoch: int
    heads: RangedHeads  # every order's head: the ended ones' from `ended`
    ended: TerminalIds  # the ended ones, compact (their heads never change again)
    covered: int
    last_at: float
    since: int = 0  # confirmed events not in a checkpoint yet
    dirty: bool = False  # a delivery failed: wait for the next seed


class Checkpoints:
    def __init__(self, events_topic: str, publish: Publish, *, every_events: int,
                 every_s: float, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] | None = None,
                 refresh_budget: int = REFRESH_BUDGET) -> None:
        self._topic = events_topic
        self._refresh_budget = refresh_budget
        self._publish = publish
        self._every_events = every_events
        self._every_s = every_s
        self._clock = clock
        self._wall = wall or (lambda: datetime.now().astimezone())
        self._partitions: dict[int, _Partition] = {}
        self._generation = 0

    def seed(self, partition: int, heads: dict[str, bytes], covered: int, epoch: int,
             ended: TerminalIds | None = None) -> None:
        """The partition as folded: `heads` (of orders not ended) and `ended` as of offset
        `covered`, written under `epoch`."""
        self._generation += 1
        compact = TerminalIds() if ended is None else ended.copy()
        ranged = RangedHeads(more=lambda index: compact.range_heads(index, RANGES))
        for order_id, head in heads.items():
            ranged.set(order_id, head)
        self._partitions[partition] = _Partition(self._generation, epoch, ranged, compact,
                                                 covered, self._clock())

    def track(self, partition: int, order_id: str, digest: bytes, delivery: Delivery,
              ended: bool = False) -> None:
        """An appended event's hash (`ended`: the order's last); it counts once `delivery`
        confirms its offset."""
        tracked = self._partitions.get(partition)
        if tracked is None:
            return
        generation = tracked.generation
        delivery.add_done_callback(
            lambda done: self._delivered(partition, generation, order_id, digest, done, ended))

    def tick(self) -> None:
        """Write the checkpoints that are due by time; before that, a step of recomputing
        the ranges changed (a fold changes them all)."""
        now = self._clock()
        for partition, tracked in self._partitions.items():
            if tracked.heads.roots.marked:  # a step now, so a due checkpoint is not late
                tracked.heads.refresh(self._refresh_budget)
            if tracked.since and not tracked.dirty and now - tracked.last_at >= self._every_s:
                self._write(partition, tracked)

    def _delivered(self, partition: int, generation: int, order_id: str, digest: bytes,
                   done: Delivery, ended: bool) -> None:
        tracked = self._partitions.get(partition)
        if tracked is None or tracked.generation != generation:
            return  # folded again meanwhile: the fold has it (or not)
        if failure_of(done) is not None:
            tracked.dirty = True
            return
        if ended:  # its head is final: kept in 48 bytes, not as a dict entry
            tracked.heads.drop(order_id)
            tracked.ended.add(order_id, digest)
        else:
            tracked.heads.set(order_id, digest)
        tracked.covered = max(tracked.covered, int(done.result().offset))
        tracked.since += 1
        if not tracked.dirty and tracked.since >= self._every_events:
            self._write(partition, tracked)

    def _write(self, partition: int, tracked: _Partition) -> None:
        """Pin the root now, or (ranges left to recompute after a fold) a step closer to it:
        the next due check goes on, so a long history never stalls the event loop."""
        if not tracked.heads.refresh(self._refresh_budget):
            return
        root, orders = tracked.heads.root()
        checkpoint = Checkpoint(self._topic, partition, tracked.covered, tracked.epoch,
                                orders, root, self._wall(), RANGES)
        tracked.since, tracked.last_at = 0, self._clock()
        log.info("chain checkpoint %s[%d]@%d: %d orders, root %s", self._topic, partition,
                 checkpoint.covered_offset, checkpoint.orders, checkpoint.root.hex())
        self._publish(checkpoint)
