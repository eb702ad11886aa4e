"""Liveness: `GET /health` answers 200 while the process serves HTTP.

Deliberately independent of Kafka and PostgreSQL: a broker blip must not make an orchestrator
restart every API instance. Readiness (`GET /ready`: Kafka, PostgreSQL, lag) is separate.
The broker's version is not reported: the Kafka protocol does not expose a broker's release,
and aiokafka 0.14 no longer probes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    timestamp: datetime  # this process's clock: a stuck or skewed host shows here


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    return Health(timestamp=datetime.now(UTC))
