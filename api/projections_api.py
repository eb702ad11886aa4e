"""The projections resource: start a rebuild of the read model and watch how far it is.

Consumes the settings, the read-model pool and the `KafkaOffsets` (FastAPI dependencies);
produces:

- `POST /api/projections/rebuild` -> 202 with the rebuild's first progress report; it runs in
  this process, in the background (`projections.rebuild`: shadow workers, then the atomic
  swap). 409 if a rebuild of this read model runs anywhere (here, another API instance, or
  `oee projections rebuild`).
- `GET /api/projections/status` -> the live projection's lag per partition, and the rebuild:
  this process's progress (events/s, lag, ETA), or, for a rebuild run elsewhere, the shadow
  schema's offsets against the end of the topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from api.errors import ApiError, ErrorBody, FieldError
from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.progress import Progress
from projections.rebuild import RebuildOptions, rebuild, rebuild_running
from projections.status import projection_lag, shadow_lag

log = logging.getLogger(__name__)


class RebuildRunner:
    """At most one background rebuild per process, and the last progress it reported."""

    def __init__(self, settings: Settings, options: RebuildOptions | None = None) -> None:
        self._settings = settings
        self._options = options or RebuildOptions()
        self._task: asyncio.Task[Progress] | None = None
        self.last: Progress | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection-rebuild")

    async def stop(self) -> None:
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
        self.last = progress


def projections_router(
    settings: Settings,
    get_pool: Callable[..., AsyncConnectionPool],
    get_kafka: Callable[..., KafkaOffsets],
    options: RebuildOptions | None = None,
) -> APIRouter:
    runner = RebuildRunner(settings, options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runner.stop()  # a rebuild cut short leaves the live read model as it was

    router = APIRouter(prefix="/api/projections", tags=["projections"], lifespan=lifespan)

    @router.post("/rebuild", status_code=202, summary="Rebuild the read model from the topic",
                 responses={409: {"model": ErrorBody, "description": "A rebuild is running."}})
    async def start_rebuild(
        pool: AsyncConnectionPool = Depends(get_pool),  # noqa: B008
    ) -> JSONResponse:
        async with pool.connection() as conn:
            elsewhere = await rebuild_running(conn, settings.db_schema)
        if runner.running or elsewhere:
            raise ApiError(409, "rebuild_running", "a rebuild of the read model is running",
                           (FieldError("rebuild", "already running"),))
        runner.start()
        await asyncio.sleep(0)  # let it report "preparing"
        body = {"rebuild": runner.last.as_json() if runner.last else None,
                "statusUrl": "/api/projections/status"}
        return JSONResponse(body, status_code=202)

    @router.get("/status", summary="Projection lag and rebuild progress")
    async def status(
        pool: AsyncConnectionPool = Depends(get_pool),  # noqa: B008
        kafka: KafkaOffsets = Depends(get_kafka),  # noqa: B008
    ) -> dict[str, Any]:
        async with pool.connection() as conn:
            live = await projection_lag(conn, kafka, settings)
            elsewhere = None if runner.running else await shadow_lag(conn, kafka, settings)
        rebuild_body: dict[str, Any] | None = None
        if runner.last is not None:
            rebuild_body = {**runner.last.as_json(), "runningHere": runner.running}
        if elsewhere is not None:
            rebuild_body = {"phase": "running elsewhere", "runningHere": False,
                            **elsewhere.as_json()}
        return {"live": live.as_json(), "rebuild": rebuild_body}

    return router

