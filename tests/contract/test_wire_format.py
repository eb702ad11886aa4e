"""The Confluent framing (magic 0x00, 4-byte schema id, Avro body) and its coexistence with
the older 0x0E header; the registry is an in-memory stand-in here (tests/integration has the
real one)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import CancelOrder, OrderConfirmed, OrderStatus
from schemas.codec import (
    CONFLUENT_MAGIC,
    COMMAND_SCHEMA,
    EVENT_SCHEMA,
    MAGIC,
    MARKET_SCHEMA,
    WORK_SCHEMA,
    Codec,
    CodecError,
    SchemaMismatch,
    UndecodableRecord,
    UnknownSchemaId,
    load_histories,
)
from schemas.registry import RegistryError, SchemaNotFound
from schemas.versions import Schema
from tests.contract.avro_records import raw_schema

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
META: dict[str, Any] = dict(
    event_id="e-1", order_id="o-1", seq=1, occurred_at=T0, correlation_id="c", causation_id="k"
)
CONFIRMED = OrderConfirmed(
    **META, attempt=1, signature="5" * 88, amount_out=277_400_000,
    executed_price=Decimal("184.93"), slot=302,
)
CANCEL = CancelOrder(command_id="c-1", order_id="o-1", issued_at=T0, correlation_id="c",
                     causation_id="k", reason="user")
NAMES = (EVENT_SCHEMA, COMMAND_SCHEMA, WORK_SCHEMA, MARKET_SCHEMA)


class FakeRegistry:
    """Ids from 100 on, one per (schema, version), as a registry's global ids are."""

    def __init__(self) -> None:
        self.schemas: dict[int, Schema] = {}
        self.lookups: list[int] = []
        self.down = False

    def ids(self) -> dict[str, dict[int, int]]:
        ids: dict[str, dict[int, int]] = {}
        for history in load_histories():
            for version, schema in sorted(history.versions.items()):
                schema_id = 100 + len(self.schemas)
                self.schemas[schema_id] = schema
                ids.setdefault(history.name, {})[version] = schema_id
        return ids

    def schema(self, schema_id: int) -> Schema:
        self.lookups.append(schema_id)
        if self.down:
            raise RegistryError("schema registry at http://127.0.0.1:1 is not reachable")
        if schema_id not in self.schemas:
            raise SchemaNotFound(f"schema id {schema_id} is not in the registry")
        return self.schemas[schema_id]


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def test_a_registered_codec_writes_magic_0_then_the_current_versions_id(
    registry: FakeRegistry,
) -> None:
    ids = registry.ids()
    codec = Codec.load(ids=ids, source=registry)
    encoded = codec.encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)
    assert encoded[0] == CONFLUENT_MAGIC
    assert int.from_bytes(encoded[1:5], "big") == ids[EVENT_SCHEMA][codec.event_version]
    assert codec.writes_schema_ids
    assert codec.decode_envelope(encoded).event == CONFIRMED
    assert codec.decode_command(codec.encode_command(CANCEL)) == CANCEL
    assert registry.lookups == []  # its own ids need no registry round trip


def test_the_body_after_either_header_is_the_same_avro(registry: FakeRegistry) -> None:
    legacy = Codec.load().encode_command(CANCEL)
    framed = Codec.load(ids=registry.ids(), source=registry).encode_command(CANCEL)
    assert legacy[:2] == bytes((MAGIC, Codec.load().command_version))
    assert framed[5:] == legacy[2:]


def test_records_in_the_older_0x0E_header_are_still_read(registry: FakeRegistry) -> None:
    legacy = Codec.load().encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)
    codec = Codec.load(ids=registry.ids(), source=registry)
    assert legacy[0] == MAGIC
    assert codec.decode_envelope(legacy).status is OrderStatus.CONFIRMED


def test_an_id_registered_by_another_process_is_looked_up_once_and_matched_to_a_version(
    registry: FakeRegistry,
) -> None:
    ids = registry.ids()
    writer = Codec.load(ids=ids, source=registry)
    # A reader that was given no ids (it started before the writer registered).
    reader = Codec.load(ids={}, source=registry)
    encoded = writer.encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)
    assert reader.decode_event(encoded) == CONFIRMED
    assert reader.decode_event(encoded) == CONFIRMED
    assert registry.lookups == [ids[EVENT_SCHEMA][writer.event_version]]


def test_an_id_of_another_topics_schema_is_refused(registry: FakeRegistry) -> None:
    ids = registry.ids()
    codec = Codec.load(ids=ids, source=registry)
    command_id = ids[COMMAND_SCHEMA][codec.command_version].to_bytes(4, "big")
    event = codec.encode_event(CONFIRMED, status=OrderStatus.CONFIRMED)
    reader = Codec.load(source=registry)
    with pytest.raises(UnknownSchemaId, match="no committed version") as caught:
        reader.decode_event(bytes((CONFLUENT_MAGIC,)) + command_id + event[5:])
    assert isinstance(caught.value, CodecError)
    assert caught.value.schema_id == ids[COMMAND_SCHEMA][codec.command_version]


def test_an_unknown_id_while_the_registry_is_down_stops_the_reader_without_a_verdict(
    registry: FakeRegistry,
) -> None:
    encoded = Codec.load(ids=registry.ids(), source=registry).encode_command(CANCEL)
    registry.down = True
    reader = Codec.load(source=registry)
    with pytest.raises(RegistryError, match="not reachable") as caught:
        reader.decode_command(encoded)
    assert not isinstance(caught.value, CodecError)  # not dead-lettered, not quarantined
    registry.down = False
    assert reader.decode_command(encoded) == CANCEL
    with pytest.raises(UnknownSchemaId, match="no registry to ask"):
        Codec.load().decode_command(encoded)


def test_an_id_the_registry_never_issued_is_undecodable(registry: FakeRegistry) -> None:
    framed = Codec.load(ids=registry.ids(), source=registry).encode_command(CANCEL)
    with pytest.raises(UndecodableRecord, match="schema id 1734439522 is not in the registry"):
        Codec.load(source=registry).decode_command(b"\x00garb" + framed[5:])


def test_ids_without_the_current_version_are_refused_at_start(registry: FakeRegistry) -> None:
    ids = registry.ids()
    current = max(ids[EVENT_SCHEMA])
    partial = ids | {EVENT_SCHEMA: {v: i for v, i in ids[EVENT_SCHEMA].items() if v != current}}
    with pytest.raises(SchemaMismatch, match=f"no registry id for the current v{current}"):
        Codec.load(ids=partial, source=registry)


def test_a_looked_up_schema_is_matched_to_the_committed_version_it_equals(
    registry: FakeRegistry,
) -> None:
    ids = registry.ids()
    for name in NAMES:
        for version, schema_id in ids[name].items():
            assert registry.schemas[schema_id] == raw_schema(name, version)
