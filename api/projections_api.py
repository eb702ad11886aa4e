"""The projections resource: start a rebuild of the read model and watch how far it is.

Consumes the read side (`ReadDep`: the `Rebuilds` of this process and the `ProjectionMonitor`,
both answered by the projections package through the bootstrap); produces:

- `POST /api/projections/rebuild` -> 202 with the rebuild's first progress report; it runs in
  this process, in the background (shadow workers, then the atomic swap). 409 if a rebuild
  of this read model runs anywhere (here, another API instance, or `oee projections rebuild`).
- `GET /api/projections/status` -> the live projection's lag per partition, and the rebuild:
  this process's progress (events/s, lag, ETA), or, for a rebuild run elsewhere, the shadow
  schema's offsets against the end of the topic.

Both answer 503 with Retry-After while PostgreSQL or Kafka is out of reach.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ReadDep
from api.errors import READ_MODEL_DOWN, ApiError, ErrorBody, FieldError

router = APIRouter(prefix="/api/projections", tags=["projections"])


@router.post("/rebuild", status_code=202, summary="Rebuild the read model from the topic",
             responses={409: {"model": ErrorBody, "description": "A rebuild is running."},
                        **READ_MODEL_DOWN})
async def start_rebuild(read: ReadDep) -> JSONResponse:
    if read.rebuilds.running or await read.monitor.rebuild_running():
        raise ApiError(409, "rebuild_running", "a rebuild of the read model is running",
                       (FieldError("rebuild", "already running"),))
    read.rebuilds.start()
    await asyncio.sleep(0)  # let it report "preparing"
    body = {"rebuild": read.rebuilds.last, "statusUrl": "/api/projections/status"}
    return JSONResponse(body, status_code=202)


@router.get("/status", summary="Projection lag and rebuild progress", responses=READ_MODEL_DOWN)
async def status(read: ReadDep) -> dict[str, Any]:
    live = await read.monitor.projection()
    running_here = read.rebuilds.running
    elsewhere = None if running_here else await read.monitor.shadow()
    rebuild_body: dict[str, Any] | None = None
    last = read.rebuilds.last
    if last is not None:
        rebuild_body = {**last, "runningHere": running_here}
    if elsewhere is not None:
        rebuild_body = {"phase": "running elsewhere", "runningHere": False, **elsewhere}
    return {"live": live, "rebuild": rebuild_body}
