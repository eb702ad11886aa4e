"""How far the read model is behind the event store, from PostgreSQL and Kafka alone.

Consumes the live schema's `projection_offsets` (and `projection_rejects`), the shadow
schema of a rebuild if one exists, and the topic's end offsets; produces a `ProjectionLag`
per schema. The API's `/api/projections/status`, `/api/metrics` and `/ready` and the CLI's
`oee projections status` all read it here, so a rebuild run by another process (the CLI) is
visible to every API instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from oee.settings import Settings
from projections.kafka_offsets import KafkaOffsets, lag_of
from projections.projector import projection_group
from projections.rebuild import rebuild_running
from projections.swap import schema_exists, shadow_schema


@dataclass(frozen=True, slots=True)
class ProjectionLag:
    schema: str
    group: str
    topic: str
    positions: dict[int, int]  # partition -> next offset to project
    ends: dict[int, int]  # partition -> end offset of the topic
    rejects: int

    @property
    def projected(self) -> int:
        return sum(self.positions.values())

    @property
    def end(self) -> int:
        return sum(self.ends.values())

    @property
    def lag(self) -> int:
        return lag_of(self.ends, self.positions)

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "group": self.group, "topic": self.topic,
            "projected": self.projected, "end": self.end, "lag": self.lag,
            "rejects": self.rejects,
            "partitions": [
                {"partition": p, "position": self.positions.get(p, 0), "end": end,
                 "lag": max(end - self.positions.get(p, 0), 0)}
                for p, end in sorted(self.ends.items())
            ],
        }


async def projection_lag(
    conn: psycopg.AsyncConnection[Any], kafka: KafkaOffsets, settings: Settings,
    schema: str | None = None,
) -> ProjectionLag:
    """The lag of `schema` (default: the live one) behind the end of the event store."""
    schema = schema or settings.db_schema
    topic, group = settings.topics.events, projection_group(settings)
    cur = await conn.execute(
        sql.SQL("select partition, next_offset from {} where consumer_group = %s and topic = %s")
        .format(sql.Identifier(schema, "projection_offsets")),
        (group, topic), prepare=False,
    )
    positions = {int(p): int(o) for p, o in await cur.fetchall()}
    cur = await conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(schema, "projection_rejects")),
        prepare=False,
    )
    row = await cur.fetchone()
    ends = await kafka.end_offsets(topic)
    return ProjectionLag(schema, group, topic, positions, ends, int(row[0]) if row else 0)


async def shadow_lag(
    conn: psycopg.AsyncConnection[Any], kafka: KafkaOffsets, settings: Settings
) -> ProjectionLag | None:
    """The progress of a rebuild's shadow schema, if a rebuild is under way anywhere (a
    shadow left behind by a killed rebuild is not one: the next rebuild drops it)."""
    shadow = shadow_schema(settings.db_schema)
    if not await rebuild_running(conn, settings.db_schema):
        return None
    if not await schema_exists(conn, shadow):
        return None
    try:
        return await projection_lag(conn, kafka, settings, shadow)
    except psycopg.errors.UndefinedTable:
        return None  # created, not migrated yet
