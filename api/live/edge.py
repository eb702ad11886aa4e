"""The resources of the live edge, built once per process and handed to each connection.

Consumes what the API process's bootstrap opened (the fan-out, the one read-model pool, the
codec); produces a `LiveEdge`: the process's one fan-out (a Kafka consumer of
`orders.events`), catch-up reads on the shared pool, the catalog of raw topics and the bound
on topic replays. Nothing here opens or closes anything: the bootstrap owns every lifetime.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from api.live.config import LiveConfig
from api.live.fanout import Fanout
from api.live.history import OrderHistory
from api.live.topic_catalog import TopicCatalog


@dataclass(frozen=True, slots=True)
class LiveEdge:
    """Everything a live stream may use."""

    config: LiveConfig
    fanout: Fanout
    history: OrderHistory
    catalog: TopicCatalog
    bootstrap_servers: str
    topic_slots: asyncio.Semaphore

    @classmethod
    def of(cls, config: LiveConfig, fanout: Fanout, history: OrderHistory,
           catalog: TopicCatalog, bootstrap_servers: str) -> LiveEdge:
        return cls(config, fanout, history, catalog, bootstrap_servers,
                   asyncio.Semaphore(config.max_topic_streams))
