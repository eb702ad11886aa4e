"""Which raw topics a client may subscribe to, and how their records become JSON.

Consumes the settings (every topic the engine declares, `infra.topics.topic_specs`) and the
codec; produces the record renderer of `WS /api/topics/{topic}/stream`. A topic may be named
in full (`t1.orders.events`) or without the deployment's prefix (`orders.events`).

    {"topic", "partition", "offset", "timestamp" (ISO 8601 UTC), "key", "value"}

`value` is the decoded record: an event's envelope with its payload under `data`, a
command with its type, a writer's claim record (`orders.events`, known by its header) with
its fields, or, for topics without an Avro contract here, the JSON or text the
record holds. A record that does not decode is shown with `error` and its bytes in base64.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from domain.orders.commands import COMMAND_TYPES
from infra.topics import topic_specs
from oee.settings import Settings
from schemas.codec import Codec, CodecError
from schemas.claims import read_claim
from schemas.records import json_converter
from schemas.writer_fence import CLAIM_HEADER

Decode = Callable[[bytes], Any]


class TopicCatalog:
    """The engine's topics and one decoder per topic."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        topics = settings.topics
        self._prefix = topics.prefix
        self._names = frozenset(spec.name for spec in topic_specs(settings))
        self._codec = codec
        self._commands = {cls: json_converter(cls) for cls in COMMAND_TYPES}
        self._decoders: dict[str, Decode] = {
            topics.events: self._event,
            topics.commands: self._command,
        }

    def resolve(self, name: str) -> str | None:
        """The full name of an engine topic named in full or without the prefix."""
        for candidate in (name, f"{self._prefix}{name}"):
            if candidate in self._names:
                return candidate
        return None

    @property
    def names(self) -> list[str]:
        return sorted(name.removeprefix(self._prefix) for name in self._names)

    def render(self, record: ConsumerRecord[bytes, bytes]) -> str:
        """The JSON text of one record, decoded once, for one connection."""
        decode = self._decoders.get(record.topic, _plain)
        if any(name == CLAIM_HEADER for name, _ in record.headers or ()):
            decode = _claim
        value = record.value or b""
        try:
            decoded = decode(value)
        except (CodecError, ValueError) as error:
            decoded = {"error": str(error), "base64": base64.b64encode(value).decode()}
        return orjson.dumps({
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(),
            "key": None if record.key is None else _text(record.key),
            "value": decoded,
        }).decode()

    def _event(self, value: bytes) -> dict[str, Any]:
        event = self._codec.decode_event(value)
        return {
            "eventId": event.event_id,
            "orderId": event.order_id,
            "seq": event.seq,
            "type": type(event).__name__,
            "occurredAt": event.occurred_at.astimezone(UTC).isoformat(),
            "correlationId": event.correlation_id,
            "causationId": event.causation_id,
            "data": self._codec.event_to_json(event),
        }

    def _command(self, value: bytes) -> dict[str, Any]:
        command = self._codec.decode_command(value)
        return {"type": type(command).__name__, **self._commands[type(command)](command)}


def _claim(value: bytes) -> dict[str, Any]:
    return {"type": "WriterClaim", **read_claim(value)}


def _plain(value: bytes) -> Any:
    """JSON if the record holds JSON, else its text, else its bytes in base64."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return {"text": value.decode()} if _is_text(value) else {
            "base64": base64.b64encode(value).decode()}


def _text(raw: bytes) -> str:
    return raw.decode() if _is_text(raw) else base64.b64encode(raw).decode()


def _is_text(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
