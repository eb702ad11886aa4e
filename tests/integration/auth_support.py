"""The auth tests' harness: an engine with AUTH_MODE=on (the real worker, projector, API on a
port) and keys of each scope made through the real key store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from api.auth.keys import Scope
from api.auth.store import create_key
from oee.api_bootstrap import bootstrap
from oee.settings import AuthMode, Settings
from tests.e2e.live_harness import Served, serving

SECRET = SecretStr("test-server-secret-" + "0" * 40)
ORDER: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5",
                         "slippageBps": 50}


def with_auth(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"auth_mode": AuthMode.ON, "auth_secret": SECRET,
                                       **extra})


@dataclass(frozen=True)
class Key:
    key_id: str
    text: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.text}"}


def make_key(settings: Settings, name: str, scope: Scope) -> Key:
    assert settings.database_url
    made = create_key(settings.database_url, settings.db_schema,
                      SECRET.get_secret_value().encode(), name, scope)
    return Key(made.key_id, made.text)


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[tuple[Served, httpx.AsyncClient]]:
    """One API instance on a local port, and an HTTP client of it."""
    async with serving(bootstrap(settings)) as served, httpx.AsyncClient(
            base_url=served.http, timeout=30) as client:
        yield served, client


async def topic_records(settings: Settings, topic: str) -> list[tuple[bytes, bytes]]:
    """Every record (key, value) of `topic` now, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        found: list[tuple[bytes, bytes]] = []
        for part in parts:
            consumer.seek(part, starts[part])
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend((r.key or b"", r.value or b"") for r in records)
        return found
    finally:
        await consumer.stop()
