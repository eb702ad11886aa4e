"""The projections side of the API's read-model ports: lag figures and the background rebuild.

Consumes the API process's one PostgreSQL pool, its one `KafkaOffsets` and the settings;
produces
- `ProjectionMonitor`: the live projection's lag, a rebuild's progress wherever it runs,
  the stream workers' consumer-group lags and the events topic's partitions, as JSON;
- `RebuildRunner`: at most one background rebuild per process and its last progress.

The API declares what it needs as Protocols (`api.deps`); the API process's composition
root (`oee.api_bootstrap`) hands it these, so the edge never imports this package.
Database errors propagate: the edge answers them 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.progress import Progress
from projections.rebuild import RebuildOptions, rebuild, rebuild_running
from projections.status import projection_lag, shadow_lag

log = logging.getLogger(__name__)


class ProjectionMonitor:
    """Lag of the read model and of the stream workers, read on demand."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool,
                 kafka: KafkaOffsets) -> None:
        self._settings = settings
        self._pool = pool
        self._kafka = kafka

    async def projection(self) -> dict[str, Any]:
        """The live schema's lag behind the events topic (`ProjectionLag.as_json()`)."""
        async with self._pool.connection() as conn:
            return (await projection_lag(conn, self._kafka, self._settings)).as_json()

    async def shadow(self) -> dict[str, Any] | None:
        """A rebuild's shadow schema against the topic, if a rebuild runs anywhere."""
        async with self._pool.connection() as conn:
            found = await shadow_lag(conn, self._kafka, self._settings)
        return None if found is None else found.as_json()

    async def rebuild_running(self) -> bool:
        """Does any process (this one, another API instance, the CLI) rebuild this schema?"""
        async with self._pool.connection() as conn:
            return await rebuild_running(conn, self._settings.db_schema)

    async def consumer_lags(self) -> list[dict[str, Any]]:
        """Every consumer group that commits to Kafka (the stream workers)."""
        return [{"group": g.group, "topic": g.topic, "lag": g.lag, "partitions": g.partitions}
                for g in await self._kafka.group_lags()]

    async def event_partitions(self) -> int:
        """How many partitions the events topic has (0: Kafka does not know it)."""
        return len(await self._kafka.end_offsets(self._settings.topics.events))


class RebuildRunner:
    """At most one background rebuild per process, and the last progress it reported."""

    def __init__(self, settings: Settings, options: RebuildOptions | None = None) -> None:
        self._settings = settings
        self._options = options or RebuildOptions()
        self._task: asyncio.Task[Progress] | None = None
        self._last: Progress | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def last(self) -> dict[str, Any] | None:
        return None if self._last is None else self._last.as_json()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection-rebuild")

    async def stop(self) -> None:
        """Cancel a running rebuild: cut short, it leaves the live read model as it was."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> Progress:
        try:
            return await rebuild(self._settings, self._options, self._report)
        except Exception:
            log.exception("projection rebuild failed")
            raise

    def _report(self, progress: Progress) -> None:
        self._last = progress
