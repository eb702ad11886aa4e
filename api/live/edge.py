"""The resources of the live edge, opened once per process and handed to each connection.

Consumes the settings and a `LiveConfig`; produces a `LiveEdge`: the process's one fan-out
(a Kafka consumer of `orders.events`), a small read-model pool for catch-up, the catalog of
raw topics and the bound on topic replays. Opened by the live router's lifespan (see
`api.live.router`), closed after the last request; nothing is opened at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import WebSocket

from api.live.config import LiveConfig
from api.live.fanout import Fanout
from api.live.history import OrderHistory
from api.live.topic_catalog import TopicCatalog
from infra.services import bootstrap_servers, database_url
from oee.settings import Settings
from schemas.codec import Codec


@dataclass(frozen=True, slots=True)
class LiveEdge:
    """Everything a live stream may use."""

    config: LiveConfig
    fanout: Fanout
    history: OrderHistory
    catalog: TopicCatalog
    bootstrap_servers: str
    topic_slots: asyncio.Semaphore


@asynccontextmanager
async def open_live_edge(settings: Settings, config: LiveConfig) -> AsyncIterator[LiveEdge]:
    """Open the fan-out and the read-model pool; close both on exit."""
    codec = Codec.load()
    bootstrap = bootstrap_servers(settings)
    fanout = Fanout.open(bootstrap, settings.topics.events, codec, config)
    history = OrderHistory.open(database_url(settings), settings.db_schema, config.pool_size)
    async with fanout as live, history as read_model:
        yield LiveEdge(config, live, read_model, TopicCatalog(settings, codec), bootstrap,
                       asyncio.Semaphore(config.max_topic_streams))


def live_edge(websocket: WebSocket) -> LiveEdge:
    """The dependency of every live route: the edge the app's lifespan opened."""
    found = getattr(websocket.app.state, "live", None)
    if not isinstance(found, LiveEdge):
        raise RuntimeError("the app is not started: its lifespan opens the live edge")
    return found
