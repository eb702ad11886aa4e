"""The read-model side of the edge in one router: queries, projections, metrics, readiness.

Consumes the Settings; produces `read_model_router(settings)`, which the app includes. Its
lifespan (FastAPI merges a router's lifespan into the app's) opens the resources the routes
share — a small psycopg pool on the read model and one `KafkaOffsets` — before the first
request and closes them after the last; the routes get them through the `read_model_pool`
and `kafka_offsets` dependencies. Nothing is opened at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from psycopg_pool import AsyncConnectionPool

from api.metrics import metrics_router
from api.projections_api import projections_router
from api.queries import queries_router
from infra.services import bootstrap_servers, database_url
from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets
from projections.rebuild import RebuildOptions


@dataclass(frozen=True, slots=True)
class ReadModel:
    pool: AsyncConnectionPool
    kafka: KafkaOffsets


def read_model(request: Request) -> ReadModel:
    found = getattr(request.app.state, "read_model", None)
    if not isinstance(found, ReadModel):
        raise RuntimeError("the app is not started: its lifespan opens the read model")
    return found


def read_model_pool(request: Request) -> AsyncConnectionPool:
    return read_model(request).pool


def kafka_offsets(request: Request) -> KafkaOffsets:
    return read_model(request).kafka


@asynccontextmanager
async def open_read_model(settings: Settings, pool_size: int = 8) -> AsyncIterator[ReadModel]:
    """The pool connects in the background: a database that is down at boot fails requests
    (and `/ready`), not the start of the process."""
    pool = AsyncConnectionPool(database_url(settings), min_size=1, max_size=pool_size,
                               open=False, timeout=10, kwargs={"autocommit": True})
    await pool.open(wait=False)
    try:
        async with KafkaOffsets(bootstrap_servers(settings)) as kafka:
            yield ReadModel(pool, kafka)
    finally:
        await pool.close()


def read_model_router(
    settings: Settings,
    *,
    pool_size: int = 8,
    max_projection_lag: int = 10_000,
    rebuild: RebuildOptions | None = None,
) -> APIRouter:
    """GET /api/orders..., /api/projections/..., /api/metrics, /metrics and /ready."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_read_model(settings, pool_size) as opened:
            app.state.read_model = opened
            try:
                yield
            finally:
                del app.state.read_model

    router = APIRouter(lifespan=lifespan)
    router.include_router(queries_router(read_model_pool, settings.db_schema))
    router.include_router(
        projections_router(settings, read_model_pool, kafka_offsets, rebuild))
    router.include_router(metrics_router(settings, read_model_pool, kafka_offsets,
                                         max_projection_lag=max_projection_lag))
    return router
