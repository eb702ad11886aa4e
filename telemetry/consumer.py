"""Where a process's consumer stands: lag per group/topic/partition, and whether it is stalled.

Consumes what the consumer's owner reports (assignments, each record handed over) and a way
to read the partition's high watermark (the consumer's last fetched end offset, read in
memory: no broker call); produces the `oee_consumer_lag` gauge, computed when scraped, and the
`health()` of the `/health` route: healthy once the consumer holds an assignment and no
partition with records waiting has gone `stall_after_s` without one being handed over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

STALL_AFTER_S: Final = 60.0

Highwater = Callable[[str, int], int | None]  # (topic, partition) -> end offset, if known


@dataclass(slots=True)
class _Position:
    next_offset: int | None = None  # after the last record handed over
    progressed_at: float = 0.0


class ConsumerProgress(Collector):
    def __init__(self, group: str, highwater: Highwater | None = None, *,
                 stall_after_s: float = STALL_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.group = group
        self.highwater: Highwater = highwater or _unknown  # set once the consumer exists
        self._stall_after_s, self._clock = stall_after_s, clock
        self._positions: dict[tuple[str, int], _Position] = {}
        self._assigned = False

    def register(self, registry: CollectorRegistry) -> ConsumerProgress:
        registry.register(self)
        return self

    def assigned(self, partitions: Iterable[tuple[str, int]]) -> None:
        now = self._clock()
        self._positions = {tp: self._positions.get(tp) or _Position(progressed_at=now)
                           for tp in partitions}
        self._assigned = True

    def revoked(self) -> None:
        """A rebalance started: no assignment until the next `assigned`."""
        self._assigned = False

    def consumed(self, topic: str, partition: int, offset: int) -> None:
        """The record at `offset` was handed over."""
        self.positioned(topic, partition, offset + 1)

    def positioned(self, topic: str, partition: int, next_offset: int) -> None:
        """The consumer will hand over `next_offset` next (after a seek, or a record)."""
        position = self._positions.setdefault((topic, partition), _Position())
        position.next_offset = next_offset
        position.progressed_at = self._clock()

    def lags(self) -> dict[tuple[str, int], int]:
        """Records behind the end per partition whose end (and position) is known."""
        lags: dict[tuple[str, int], int] = {}
        for (topic, partition), position in self._positions.items():
            end = self.highwater(topic, partition)
            if end is not None and position.next_offset is not None:
                lags[(topic, partition)] = max(0, end - position.next_offset)
        return lags

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = self._clock()
        lags = self.lags()
        stalled = sorted(f"{topic}[{partition}]" for (topic, partition), lag in lags.items()
                         if lag > 0 and now - self._positions[(topic, partition)].progressed_at
                         > self._stall_after_s)
        ok = self._assigned and not stalled
        return ok, {"assigned": self._assigned, "partitions": len(self._positions),
                    "lag": sum(lags.values()), "stalled": stalled}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("oee_consumer_lag",
                                   "Records behind the partition's end, per consumer group.",
                                   labels=["group", "topic", "partition"])
        for (topic, partition), lag in sorted(self.lags().items()):
            family.add_metric([self.group, topic, str(partition)], lag)
        yield family


def _unknown(topic: str, partition: int) -> int | None:
    return None
