"""Lets the Faust worker's consumer long-poll for a configurable time.

faust-streaming 0.15 hard-codes `fetch_max_wait_ms=1500` for the worker consumer
(transport/drivers/aiokafka.py). aiokafka keeps one fetch in flight per broker, so a partition
that receives a record while a fetch for other (idle) partitions is parked can wait up to that
long: every hop of an order would pay it. There is no setting, so the one constructor is
wrapped, once per process, before the app builds its consumer. The same wrapper paces the
consumer's fetches (infra/fetch_pacing.py).
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from infra.fetch_pacing import FetchPacing, pace_consumer

_ORIGINAL = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def set_fetch_pacing(pacing: FetchPacing) -> None:
    """Long-poll `pacing.idle_max_wait_ms` when idle, gather per `pacing` when busy."""
    def create(self: Any, transport: Any) -> Any:
        consumer = _ORIGINAL(self, transport)
        consumer._fetch_max_wait_ms = pacing.idle_max_wait_ms  # read by the fetcher at start()
        pace_consumer(consumer, pacing)
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]
