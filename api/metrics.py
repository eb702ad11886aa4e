"""The JSON summary and readiness: what the read model and Kafka say about the engine now.

Consumes the read model (`orders`) through the process's one pool and the lag figures of the
`ProjectionMonitor` port (`ReadDep`); produces
- `GET /api/metrics`: orders by status and by type, venue share, success rate (confirmed
  out of confirmed + failed), lifecycle duration p50/p99 (created -> terminal, over the most
  recent `LIFECYCLE_SAMPLE` orders), the lag of every consumer group that commits to Kafka
  (the stream workers) and the projector's lag (its offsets in PostgreSQL);
- `GET /ready`: 200 when Kafka and PostgreSQL answer and the projector is at most
  `max_projection_lag` events behind, else 503 with the failing checks (PostgreSQL down
  reads `"postgres": {"ok": false, "error": ...}`).
Prometheus' `GET /metrics` is `api.http_metrics`: this process's own figures and no SQL; the
engine-wide order counts are the projector's `oee_orders` gauge.

The summary answers 503 with Retry-After while PostgreSQL or Kafka is out of reach.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, Final

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from psycopg import sql

from api.auth.guard import needs
from api.auth.keys import Scope
from api.deps import ReadDep, ReadSide
from api.errors import READ_MODEL_DOWN

LIFECYCLE_SAMPLE: Final = 10_000
READY_TIMEOUT_S: Final = 3.0

router = APIRouter(tags=["metrics"])


@router.get("/api/metrics", summary="Engine metrics as JSON", responses=READ_MODEL_DOWN,
            dependencies=[Depends(needs(Scope.ADMIN))])
async def api_metrics(read: ReadDep) -> dict[str, Any]:
    return await collect(read)


@router.get("/ready", summary="Readiness: Kafka, PostgreSQL, projector lag",
            responses={503: {"description": "Not ready; `checks` says why."}})
async def ready(read: ReadDep) -> JSONResponse:
    checks = await readiness(read)
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks},
                        status_code=200 if ok else 503)


async def collect(read: ReadSide) -> dict[str, Any]:
    async with read.pool.connection() as conn:
        orders = await _queries(read.schema).orders(conn)
    projector = await read.monitor.projection()
    projector.pop("partitions")
    return {**orders, "consumerLag": await read.monitor.consumer_lags(), "projector": projector}


async def readiness(read: ReadSide) -> dict[str, dict[str, Any]]:
    """Each check with its reason; a check that cannot finish in time counts as failed."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        partitions = await asyncio.wait_for(read.monitor.event_partitions(), READY_TIMEOUT_S)
        checks["kafka"] = {"ok": partitions > 0, "partitions": partitions}
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", with its reason
        checks["kafka"] = {"ok": False, "error": repr(error)}
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), read.pool.connection() as conn:
            await conn.execute("select 1")
        checks["postgres"] = {"ok": True}
    except Exception as error:  # noqa: BLE001
        checks["postgres"] = {"ok": False, "error": repr(error)}
    if not checks["kafka"]["ok"]:
        checks["projector"] = {"ok": False, "error": "Kafka is not reachable"}
    elif not checks["postgres"]["ok"]:
        checks["projector"] = {"ok": False, "error": "PostgreSQL is not reachable"}
    else:
        try:
            lag = (await asyncio.wait_for(read.monitor.projection(), READY_TIMEOUT_S))["lag"]
            checks["projector"] = {"ok": lag <= read.max_projection_lag, "lag": lag,
                                   "maxLag": read.max_projection_lag}
        except Exception as error:  # noqa: BLE001
            checks["projector"] = {"ok": False, "error": repr(error)}
    return checks


@cache
def _queries(schema: str) -> _Queries:
    return _Queries(schema)


async def order_figures(conn: Any, schema: str) -> dict[str, Any]:
    """The order figures of `GET /api/metrics` (counts by status and type, venue share,
    success rate, lifecycle), read from `schema`'s read model on `conn`."""
    return await _queries(schema).orders(conn)


class _Queries:
    def __init__(self, schema: str) -> None:
        orders = sql.Identifier(schema, "orders")
        self.counts = sql.SQL(
            "select status, order_type, venue, count(*) from {} group by 1, 2, 3"
        ).format(orders)
        # The newest orders by the created_at index: bounded work however big the table.
        self.lifecycle = sql.SQL(
            "select percentile_cont(array[0.5, 0.99]) within group (order by seconds), count(*)"
            " from (select extract(epoch from ended - created_at)::float8 as seconds"
            "  from (select created_at,"
            "        coalesce(confirmed_at, failed_at, cancelled_at, expired_at) as ended"
            "        from {} order by created_at desc limit %s) newest"
            "  where ended is not null) done"
        ).format(orders)

    async def orders(self, conn: Any) -> dict[str, Any]:
        cur = await conn.execute(self.counts)
        by_status: dict[str, int] = {}
        by_type: dict[str, int] = {}
        by_venue: dict[str, int] = {}
        for status, order_type, venue, count in await cur.fetchall():
            by_status[status] = by_status.get(status, 0) + count
            by_type[order_type] = by_type.get(order_type, 0) + count
            if venue is not None:
                by_venue[venue] = by_venue.get(venue, 0) + count
        cur = await conn.execute(self.lifecycle, (LIFECYCLE_SAMPLE,))
        quantiles, sampled = await cur.fetchone()
        p50, p99 = quantiles if quantiles else (None, None)
        confirmed, failed = by_status.get("confirmed", 0), by_status.get("failed", 0)
        routed = sum(by_venue.values())
        return {
            "orders": {"total": sum(by_status.values()), "byStatus": by_status,
                       "byType": by_type},
            "venues": {venue: {"orders": count, "share": round(count / routed, 4)}
                       for venue, count in sorted(by_venue.items())},
            "successRate": round(confirmed / (confirmed + failed), 4)
            if confirmed + failed else None,
            "lifecycleSeconds": {"p50": p50, "p99": p99, "sampled": sampled},
        }
