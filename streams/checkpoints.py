"""The writer's periodic chain checkpoints: per partition, the Merkle root of every order's head.

Consumes the partition's heads once folded (`seed`: the fold's heads, as of the last record it
read) and each appended event's hash with its delivery (`track`); produces a `Checkpoint`
(`schemas.checkpoints`) every `every_events` confirmed events or, when some arrived, every
`every_s` seconds (`tick`), handed to `publish` (the shell writes it to `orders.checkpoints`
and logs it). Only what the broker confirmed counts, so a checkpoint never covers an event
the store may not have; confirmations of one partition arrive in offset order from the
writer's producer, and after a refused delivery the partition writes no checkpoint until it
is folded and seeded again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.chain import merkle_root_of_sorted
from schemas.checkpoints import Checkpoint
from streams.ports import Delivery, failure_of
from streams.terminal_ids import TerminalIds

log = logging.getLogger(__name__)

Publish = Callable[[Checkpoint], None]


@dataclass(slots=True)
class _Partition:
    generation: int
    epoch: int
    heads: dict[str, bytes]  # of orders not ended
    ended: TerminalIds  # the ended ones, compact (their heads never change again)
    covered: int
    last_at: float
    since: int = 0  # confirmed events not in a checkpoint yet
    dirty: bool = False  # a delivery failed: wait for the next seed


class Checkpoints:
    def __init__(self, events_topic: str, publish: Publish, *, every_events: int,
                 every_s: float, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] | None = None) -> None:
        self._topic = events_topic
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
        self._partitions[partition] = _Partition(
            self._generation, epoch, dict(heads),
            TerminalIds() if ended is None else ended.copy(), covered, self._clock())

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
        """Write the checkpoints that are due by time."""
        now = self._clock()
        for partition, tracked in self._partitions.items():
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
            tracked.heads.pop(order_id, None)
            tracked.ended.add(order_id, digest)
        else:
            tracked.heads[order_id] = digest
        tracked.covered = max(tracked.covered, int(done.result().offset))
        tracked.since += 1
        if not tracked.dirty and tracked.since >= self._every_events:
            self._write(partition, tracked)

    def _write(self, partition: int, tracked: _Partition) -> None:
        leaves = list(tracked.ended.sorted_heads(also=tracked.heads))
        checkpoint = Checkpoint(self._topic, partition, tracked.covered, tracked.epoch,
                                len(leaves), merkle_root_of_sorted(leaves), self._wall())
        tracked.since, tracked.last_at = 0, self._clock()
        log.info("chain checkpoint %s[%d]@%d: %d orders, root %s", self._topic, partition,
                 checkpoint.covered_offset, checkpoint.orders, checkpoint.root.hex())
        self._publish(checkpoint)
