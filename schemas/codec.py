"""The wire format of the order topics (events, commands, stage work) and of the market
topics (market events): the Confluent framing + Avro binary.

    byte 0     magic 0x00
    bytes 1-4  the writer schema's id in the schema registry (big-endian)
    rest       the record, Avro binary without a container (fastavro's schemaless format)

Records written before the registry (and by a codec built without one) carry the older
2-byte header, which every reader still reads:

    byte 0   magic 0x0E
    byte 1   writer schema version (1..255)

A record is read with the schema version it was written with and resolved to the current
schema, Avro resolution and the upcasters of `schemas.upcasts` taking turns (what resolution
cannot express, such as flat fields becoming a nested record), so every committed version
(schemas/history) stays readable. The ids of our versions come from the registration at
start-up (`schemas.registry.register_histories`); an id not among them (a version another
process registered) is looked up once in the registry and matched to a committed version.
The caller builds one `Codec` at startup (`Codec.load()`, or `infra.schema_registry`'s
`registered_codec` for the Confluent framing): schemas are parsed and the messages mapped once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final, cast, get_args

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from domain.market_events import MARKET_EVENT_TYPES, BaseMarketEvent, MarketEvent
from domain.orders.commands import COMMAND_TYPES, NOT_ON_THE_WIRE, BaseCommand, Command
from domain.orders.events import EVENT_TYPES, BaseEvent, Event
from domain.orders.status import OrderStatus
from domain.work import Work
from schemas.chain import ChainLink, chained_body
from schemas.errors import (
    CodecError,
    SchemaHistoryError,
    SchemaMismatch,
    UndecodableRecord,
    UnencodableMessage,
    UnknownSchemaId,
    UnknownSchemaVersion,
)
from schemas.records import RecordMapping, camel, json_converter, record_mapping
from schemas.registry import SchemaNotFound, SchemaSource, VersionIds
from schemas.upcasts import UPCASTS, NotUpcastable, Upcast
from schemas.versions import Schema, SchemaHistory, load_history

__all__ = [
    "CONFLUENT_MAGIC",
    "MAGIC",
    "Codec",
    "CodecError",
    "EventEnvelope",
    "SchemaHistoryError",
    "SchemaMismatch",
    "UndecodableRecord",
    "UnencodableMessage",
    "UnknownSchemaId",
    "UnknownSchemaVersion",
    "event_type_name",
    "load_histories",
]

MAGIC: Final = 0x0E  # the pre-registry header: magic, version
CONFLUENT_MAGIC: Final = 0x00  # the Confluent header: magic, 4-byte schema id
_ID_HEADER: Final = 5
EVENT_SCHEMA: Final = "order_event"
COMMAND_SCHEMA: Final = "order_command"
WORK_SCHEMA: Final = "order_work"
MARKET_SCHEMA: Final = "market_event"
_EVENT_BASE: Final = frozenset(f.name for f in BaseEvent.__dataclass_fields__.values())
_COMMAND_BASE: Final = frozenset(f.name for f in BaseCommand.__dataclass_fields__.values())
_MARKET_BASE: Final = frozenset(f.name for f in BaseMarketEvent.__dataclass_fields__.values())
_WORK_ENVELOPE: Final = frozenset({"schema_version", "payload"})
# What fastavro raises on bytes that are not a record of the writer schema.
_CORRUPT: Final = (EOFError, ValueError, IndexError, OverflowError)
# What building a domain value raises on a decoded value it rejects (enum, Decimal).
_REJECTED: Final = (ValueError, ArithmeticError)
_UNENCODABLE: Final = (ValueError, TypeError, OverflowError)
# An envelope's status by its value: a dict lookup, not an enum call, on every decode.
_STATUSES: Final = {status.value: status for status in OrderStatus}


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """An event as the event store holds it: the business fact and what its writer knew.

    The order's status after the event is not part of the domain event (events are facts;
    the status is a function of the whole history, the transition table applied by the one
    writer): the writer folds it anyway, so it writes it beside the event, and every reader
    (projector, live fan-out, dashboard) takes it from here instead of folding again. None
    only for a v1/v2 record whose event alone does not tell it (see `schemas.upcasts`)."""

    event: Event
    status: OrderStatus | None
    prev_hash: bytes | None = None  # v5: the chain (schemas.chain); None before v5
    hash: bytes | None = None


def event_type_name(event: Event) -> str:
    """The event's type as written in the envelope's `type` field."""
    return type(event).__name__


class Codec:
    """Encodes and decodes order events, commands, work items and market events; thread-safe
    once built."""

    def __init__(
        self,
        events: SchemaHistory | None = None,
        commands: SchemaHistory | None = None,
        work: SchemaHistory | None = None,
        market: SchemaHistory | None = None,
        *,
        ids: Mapping[str, VersionIds] | None = None,
        source: SchemaSource | None = None,
    ) -> None:
        """A codec of the given schema histories (default: the installed .avsc files).

        With `ids` (each schema's {version: registry id}) it writes the Confluent framing,
        else the older 2-byte header; `source` looks up ids it was not given."""
        events = events or load_history(EVENT_SCHEMA)
        commands = commands or load_history(COMMAND_SCHEMA)
        work = work or load_history(WORK_SCHEMA)
        market = market or load_history(MARKET_SCHEMA)
        wire = _Wire(ids or {}, source)
        event_envelope = _EVENT_BASE | {"type", "status", "schema_version", "payload",
                                        "prev_hash", "hash"}
        command_envelope = (_COMMAND_BASE - NOT_ON_THE_WIRE) | {"schema_version", "payload"}
        self._events = _Contract(events, EVENT_TYPES, _EVENT_BASE, event_envelope, wire,
                                 UPCASTS.get(events.name, {}))
        self._commands = _Contract(commands, COMMAND_TYPES, _COMMAND_BASE, command_envelope,
                                   wire, UPCASTS.get(commands.name, {}))
        # Work items have no envelope of their own: the whole item is the payload.
        self._work = _Contract(work, get_args(Work), frozenset(), _WORK_ENVELOPE, wire)
        self._market = _Contract(market, MARKET_EVENT_TYPES, _MARKET_BASE,
                                 _MARKET_BASE | {"schema_version", "payload"}, wire)
        self._json = {cls: json_converter(cls, skip=_EVENT_BASE) for cls in EVENT_TYPES}
        self._market_json = {
            cls: json_converter(cls, skip=_MARKET_BASE) for cls in MARKET_EVENT_TYPES
        }

    @classmethod
    def load(
        cls,
        directory: Path | None = None,
        *,
        ids: Mapping[str, VersionIds] | None = None,
        source: SchemaSource | None = None,
    ) -> Codec:
        """The codec of the .avsc files in `directory` (default: the installed schemas)."""
        return cls(*load_histories(directory), ids=ids, source=source)

    @property
    def writes_schema_ids(self) -> bool:
        """True when records get the Confluent framing (the codec knows its registry ids)."""
        return self._events.header[0] == CONFLUENT_MAGIC

    @property
    def event_version(self) -> int:
        return self._events.version

    @property
    def command_version(self) -> int:
        return self._commands.version

    @property
    def work_version(self) -> int:
        return self._work.version

    @property
    def market_version(self) -> int:
        return self._market.version

    def encode_event(self, event: Event, *, status: OrderStatus) -> bytes:
        """`event` in its envelope, with the order's `status` after it (the writer's fold),
        not chained (both hashes null; the writer uses `encode_chained_event`)."""
        mapping = self._events.mapping_of(event)
        return self._events.write(
            {
                "eventId": event.event_id,
                "orderId": event.order_id,
                "seq": event.seq,
                "type": mapping.cls.__name__,
                "occurredAt": event.occurred_at,
                "correlationId": event.correlation_id,
                "causationId": event.causation_id,
                "status": status.value,
                "schemaVersion": self._events.version,
                "payload": (mapping.fullname, mapping.to_avro(event)),
                "prevHash": None,
                "hash": None,
            }
        )

    def encode_chained_event(self, event: Event, *, status: OrderStatus,
                             prev_hash: bytes) -> tuple[bytes, bytes]:
        """`event` chained to `prev_hash` (its order's head; `schemas.chain.GENESIS` for
        the first): (the record, its hash). One Avro encode: the body written with both
        hashes null is the canonical bytes; the hashes are spliced into its tail."""
        record = self.encode_event(event, status=status)
        header = len(self._events.header)
        body, digest = chained_body(record[header:], prev_hash)
        return record[:header] + body, digest

    def chain_link(self, data: bytes) -> ChainLink | None:
        """The chain fields of a stored event and its canonical bytes, recomputed the way
        an auditor would (decode with the writer's schema, null both hashes, encode again);
        None for a record of a version before the chain (v1-v4)."""
        return self._events.chain_link(data)

    def decode_event(self, data: bytes) -> Event:
        """The event alone (see `decode_envelope` for the status beside it)."""
        return self.decode_envelope(data).event

    def decode_envelope(self, data: bytes) -> EventEnvelope:
        record = self._events.read(data)
        mapping, payload = self._events.payload_of(record)
        if record["type"] != mapping.cls.__name__:
            raise UndecodableRecord(f"type {record['type']!r} but payload {mapping.fullname}")
        raw = record["status"]
        status = None if raw is None else _STATUSES.get(raw)
        if status is None and raw is not None:
            raise UndecodableRecord(f"{self._events.name}: {raw!r} is not a valid OrderStatus")
        event = cast(
            Event,
            self._events.build(
                mapping,
                payload,
                event_id=record["eventId"],
                order_id=record["orderId"],
                seq=record["seq"],
                occurred_at=record["occurredAt"],
                correlation_id=record["correlationId"],
                causation_id=record["causationId"],
            ),
        )
        return EventEnvelope(event, status, _digest(record["prevHash"]), _digest(record["hash"]))

    def encode_command(self, command: Command) -> bytes:
        mapping = self._commands.mapping_of(command)
        return self._commands.write(
            {
                "commandId": command.command_id,
                "orderId": command.order_id,
                "issuedAt": command.issued_at,
                "correlationId": command.correlation_id,
                "causationId": command.causation_id,
                "schemaVersion": self._commands.version,
                "payload": (mapping.fullname, mapping.to_avro(command)),
                "acceptBy": command.accept_by,
            }
        )

    def decode_command(self, data: bytes) -> Command:
        record = self._commands.read(data)
        mapping, payload = self._commands.payload_of(record)
        return cast(
            Command,
            self._commands.build(
                mapping,
                payload,
                command_id=record["commandId"],
                order_id=record["orderId"],
                issued_at=record["issuedAt"],
                correlation_id=record["correlationId"],
                causation_id=record["causationId"],
                accept_by=record["acceptBy"],
            ),
        )

    def encode_work(self, work: Work) -> bytes:
        mapping = self._work.mapping_of(work)
        return self._work.write(
            {
                "schemaVersion": self._work.version,
                "payload": (mapping.fullname, mapping.to_avro(work)),
            }
        )

    def decode_work(self, data: bytes) -> Work:
        record = self._work.read(data)
        mapping, payload = self._work.payload_of(record)
        return cast(Work, self._work.build(mapping, payload))

    def encode_market_event(self, event: MarketEvent) -> bytes:
        mapping = self._market.mapping_of(event)
        return self._market.write(
            {
                "eventId": event.event_id,
                "occurredAt": event.occurred_at,
                "schemaVersion": self._market.version,
                "payload": (mapping.fullname, mapping.to_avro(event)),
            }
        )

    def decode_market_event(self, data: bytes) -> MarketEvent:
        record = self._market.read(data)
        mapping, payload = self._market.payload_of(record)
        return cast(
            MarketEvent,
            self._market.build(
                mapping, payload, event_id=record["eventId"], occurred_at=record["occurredAt"]
            ),
        )

    def market_event_to_json(self, event: MarketEvent) -> dict[str, Any]:
        """The payload as a JSON-ready camelCase dict: base units and Decimals as strings, a
        pool's state with its `type` (ConstantProductState | BinState)."""
        return cast(dict[str, Any], self._market_json[type(event)](event))

    def event_to_json(self, event: Event) -> dict[str, Any]:
        """The payload as a JSON-ready camelCase dict (API, WebSocket): Decimals, amounts
        and timestamps as strings."""
        return cast(dict[str, Any], self._json[type(event)](event))


def _digest(value: Any) -> bytes | None:
    """A hash field as read: None, or the Sha256 fixed (named, so fastavro may hand it over
    as (name, bytes) when asked for the names of union branches)."""
    if isinstance(value, tuple):
        value = value[1]
    return None if value is None else bytes(value)


def load_histories(directory: Path | None = None) -> tuple[SchemaHistory, ...]:
    """Every schema's history, in the order of `Codec`'s arguments (events, commands, work,
    market)."""
    return tuple(load_history(name, directory)
                 for name in (EVENT_SCHEMA, COMMAND_SCHEMA, WORK_SCHEMA, MARKET_SCHEMA))


@dataclass(frozen=True, slots=True)
class _Wire:
    """What the framing needs from the registry: our ids, and where to ask about others."""

    ids: Mapping[str, VersionIds]
    source: SchemaSource | None


class _Contract:
    """One schema with all its versions, and the mapping of its payload union's branches."""

    def __init__(
        self,
        history: SchemaHistory,
        types: Sequence[type[Any]],
        base: frozenset[str],
        envelope: frozenset[str],
        wire: _Wire,
        upcasts: Mapping[int, Upcast] | None = None,
    ) -> None:
        self.name = history.name
        self.version = history.current_version
        self._history = history
        self._source = wire.source
        ids = wire.ids.get(self.name, {})
        # Filled further by `_version_of` as ids of other processes' registrations show up
        # (a dict item assignment: safe under the GIL without a lock).
        self._versions_by_id: dict[int, int] = {i: v for v, i in ids.items()}
        if ids and self.version not in ids:
            raise SchemaMismatch(f"{self.name}: no registry id for the current v{self.version}")
        self.header = (bytes((CONFLUENT_MAGIC,)) + ids[self.version].to_bytes(4, "big")
                       if ids else bytes((MAGIC, self.version)))
        named: dict[str, Any] = {}
        self.schema = cast(Schema, parse_schema(history.current, named_schemas=named))
        self._parsed = {version: cast(Schema, parse_schema(schema))
                        for version, schema in history.versions.items()}
        self._upcasts = {v: f for v, f in (upcasts or {}).items() if v < self.version}
        self._stops = {version: self._stop(version) for version in history.versions}
        self._readers = {version: self._reader(version) for version in history.versions}
        fields = {field["name"]: field["type"] for field in self.schema["fields"]}
        if set(fields) != {camel(name) for name in envelope}:
            raise SchemaMismatch(f"{self.name}: envelope fields {sorted(fields)}")
        branches = {branch["name"].rpartition(".")[2]: branch for branch in fields["payload"]}
        missing = sorted({cls.__name__ for cls in types} ^ set(branches))
        if missing:
            raise SchemaMismatch(f"{self.name}: the payload union and the code differ: {missing}")
        mappings = [record_mapping(cls, branches[cls.__name__], named, skip=base) for cls in types]
        self._by_class = {mapping.cls: mapping for mapping in mappings}
        self._by_name = {mapping.fullname: mapping for mapping in mappings}

    def _stop(self, version: int) -> int:
        """How far Avro resolution takes a record of `version`: to the first version with an
        upcaster (which resolution cannot replace), else to the current one."""
        return min((v for v in self._upcasts if v >= version), default=self.version)

    def _reader(self, version: int) -> Callable[[BytesIO], Any]:
        writer, target = self._parsed[version], self._parsed[self._stops[version]]
        # Resolving schemas costs time on every read: skip it when nothing changed.
        reader_schema = None if writer == target else target

        def read(buffer: BytesIO) -> Any:
            return schemaless_reader(buffer, writer, reader_schema, True, True)

        return read

    def _upcast(self, version: int, record: dict[str, Any]) -> dict[str, Any]:
        """`record`, read up to `_stop(version)`, in the shape of the current version."""
        at = self._stops[version]
        while at < self.version:
            record = self._upcasts[at](record)
            at += 1
            stop = self._stop(at)
            if stop != at:  # resolution again, up to the next upcaster (re-encoded: rare)
                buffer = BytesIO()
                schemaless_writer(buffer, self._parsed[at], record)
                buffer.seek(0)
                record = schemaless_reader(buffer, self._parsed[at], self._parsed[stop],
                                           True, True)  # type: ignore[assignment]
                at = stop
        return record

    def mapping_of(self, message: Any) -> RecordMapping:
        mapping = self._by_class.get(type(message))
        if mapping is None:
            raise UnencodableMessage(f"{type(message).__name__} is not in {self.name}")
        return mapping

    def write(self, record: dict[str, Any]) -> bytes:
        buffer = BytesIO()
        buffer.write(self.header)
        try:
            schemaless_writer(buffer, self.schema, record)
        except _UNENCODABLE as error:
            raise UnencodableMessage(f"{self.name}: {error}") from error
        return buffer.getvalue()

    def read(self, data: bytes) -> dict[str, Any]:
        version, start = self._writer_version(data)
        reader = self._readers.get(version)
        if reader is None:
            raise UnknownSchemaVersion(self.name, version, self._readers)
        buffer = BytesIO(data)
        buffer.seek(start)
        try:
            record = reader(buffer)
        except _CORRUPT as error:
            raise UndecodableRecord(f"{self.name} v{version}: corrupt record: {error!r}") from error
        if buffer.tell() != len(data):
            raise UndecodableRecord(f"{self.name} v{version}: trailing bytes after the record")
        if record["schemaVersion"] != version:
            raise UndecodableRecord(
                f"{self.name}: header v{version} but schemaVersion {record['schemaVersion']}"
            )
        try:
            return self._upcast(version, cast(dict[str, Any], record))
        except NotUpcastable as error:
            raise UndecodableRecord(f"{self.name} v{version}: {error}") from error

    def chain_link(self, data: bytes) -> ChainLink | None:
        version, start = self._writer_version(data)
        schema = self._parsed.get(version)
        if schema is None:
            raise UnknownSchemaVersion(self.name, version, self._readers)
        if not any(f["name"] == "hash" for f in schema["fields"]):
            return None
        buffer = BytesIO(data)
        buffer.seek(start)
        try:  # as written: no resolution, no upcast (the bytes are what is hashed)
            record = cast(dict[str, Any], schemaless_reader(buffer, schema, None, True))
        except _CORRUPT as error:
            raise UndecodableRecord(f"{self.name} v{version}: corrupt record: {error!r}") from error
        canonical = BytesIO()
        schemaless_writer(canonical, schema, {**record, "prevHash": None, "hash": None})
        return ChainLink(_digest(record["prevHash"]), _digest(record["hash"]),
                         canonical.getvalue())

    def _writer_version(self, data: bytes) -> tuple[int, int]:
        """The writer's schema version named by the header, and where the body starts."""
        if data[:1] == bytes((CONFLUENT_MAGIC,)) and len(data) >= _ID_HEADER:
            return self._version_of(int.from_bytes(data[1:_ID_HEADER], "big")), _ID_HEADER
        if data[:1] == bytes((MAGIC,)) and len(data) >= 2:
            return data[1], 2
        if len(data) < 2 or data[0] == CONFLUENT_MAGIC:
            raise UndecodableRecord(f"{self.name}: {len(data)} bytes, shorter than the header")
        raise UndecodableRecord(f"{self.name}: magic byte 0x{data[0]:02x}, "
                                f"neither 0x{CONFLUENT_MAGIC:02x} nor 0x{MAGIC:02x}")

    def _version_of(self, schema_id: int) -> int:
        version = self._versions_by_id.get(schema_id)
        if version is not None:
            return version
        if self._source is None:
            raise UnknownSchemaId(self.name, schema_id, "not ours, and no registry to ask")
        # An id the registry never issued can never be read (every writer registers before it
        # writes). Any other RegistryError (unreachable) propagates: not a fact about the
        # record, so the reader must stop and retry rather than set a good record aside.
        try:
            schema = self._source.schema(schema_id)
        except SchemaNotFound as error:
            raise UndecodableRecord(f"{self.name}: {error}") from error
        matches = [v for v, known in self._history.versions.items() if known == schema]
        if not matches:
            raise UnknownSchemaId(self.name, schema_id, "no committed version of this schema; "
                                  "was it written by a newer release?")
        self._versions_by_id[schema_id] = matches[0]
        return matches[0]

    def payload_of(self, record: dict[str, Any]) -> tuple[RecordMapping, dict[str, Any]]:
        name, payload = record["payload"]
        return self._by_name[name], payload

    def build(self, mapping: RecordMapping, payload: dict[str, Any], **envelope: Any) -> Any:
        try:
            return mapping.cls(**envelope, **mapping.from_avro(payload))
        except _REJECTED as error:
            raise UndecodableRecord(f"{self.name}: {mapping.fullname}: {error}") from error
