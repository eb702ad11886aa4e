"""The order agent's in-memory state, one map per assigned partition, folded from the event store.

Loading starts as soon as a partition is assigned (so the watchdog re-arms timers for stalled
orders even if no command ever arrives for them) and the agent awaits it before deciding
anything for that partition. Revoked partitions are forgotten: their next owner folds them anew.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from aiokafka.errors import KafkaError

from domain.orders.events import Event
from domain.orders.evolve import evolve
from domain.orders.state import OrderState, initial_state, is_terminal
from streams.event_store import EventStoreReader

log = logging.getLogger(__name__)

Loaded = Callable[[int, list[OrderState]], None]


class OrderStates:
    def __init__(self, reader: EventStoreReader, on_loaded: Loaded) -> None:
        self._reader = reader
        self._on_loaded = on_loaded
        self._states: dict[int, dict[str, OrderState]] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            if partition not in self._loading:
                self._loading[partition] = asyncio.create_task(self._load(partition))

    def revoke(self, partitions: Iterable[int]) -> set[str]:
        """Forget the partitions; returns the ids of the orders forgotten."""
        dropped: set[str] = set()
        for partition in partitions:
            task = self._loading.pop(partition, None)
            if task is not None:
                task.cancel()
            dropped.update(self._states.pop(partition, {}))
        return dropped

    async def ready(self, partition: int) -> dict[str, OrderState]:
        """The partition's states, loading them first if this is the first touch."""
        if partition not in self._states:
            self.assign([partition])
            await asyncio.shield(self._loading[partition])
        return self._states[partition]

    def in_flight(self) -> int:
        return sum(1 for by_id in self._states.values() for s in by_id.values()
                   if s.status is not None and not is_terminal(s))

    async def _load(self, partition: int) -> None:
        events = await self._read_with_retry(partition)
        states: dict[str, OrderState] = {}
        for event in events:
            current = states.get(event.order_id) or initial_state(event.order_id)
            if event.seq <= current.seq:
                continue  # a re-decided duplicate of an event already folded
            states[event.order_id] = evolve(current, event)
        self._states[partition] = states
        log.info("partition %d: folded %d events into %d orders", partition, len(events),
                 len(states))
        self._on_loaded(partition, list(states.values()))

    async def _read_with_retry(self, partition: int) -> list[Event]:
        """Without its history a partition cannot decide anything: keep trying, loudly."""
        delay = 0.5
        while True:
            try:
                return await self._reader.read_partition(partition)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("partition %d: event store unreadable (%r); retrying", partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
