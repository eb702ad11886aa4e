"""The schema registry the fixtures start (or SCHEMA_REGISTRY_URL): registration of every
committed version, ids stable across processes and restarts, the registry's own BACKWARD
check of every history step, and records that travel by id between two codecs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from domain.orders import CancelOrder
from infra.schema_registry import LocalRegistry, registered_codec, topics_by_schema
from oee.settings import Settings
from schemas.codec import CONFLUENT_MAGIC, Codec, load_histories
from schemas.registry import RegistryClient, RegistryError, subject
from schemas.upcasts import UPCASTS
from tests import conftest
from tests.contract.test_wire_format import CANCEL


@pytest.fixture
def client(settings: Settings) -> Any:
    assert settings.schema_registry_url
    registry = RegistryClient(settings.schema_registry_url)
    yield registry
    registry.close()


def test_every_committed_version_is_registered_in_order_under_its_topics_subjects(
    settings: Settings, client: RegistryClient
) -> None:
    codec = registered_codec(settings)
    assert codec.writes_schema_ids
    for history, topics in topics_by_schema(load_histories(), settings.topics):
        for topic in topics:
            versions = client._call("GET", f"/subjects/{subject(topic)}/versions")
            assert versions == sorted(history.versions)
            for version in versions:
                found = client._call("GET", f"/subjects/{subject(topic)}/versions/{version}")
                assert json.loads(found["schema"]) == history.versions[version]
    assert subject(settings.topics.events) in client.subjects()


def test_registering_again_keeps_every_id_and_version(
    settings: Settings, client: RegistryClient
) -> None:
    first, second = registered_codec(settings), registered_codec(settings)
    assert first.encode_command(CANCEL) == second.encode_command(CANCEL)
    events = subject(settings.topics.events)
    assert client._call("GET", f"/subjects/{events}/versions") == sorted(
        load_histories()[0].versions)


def test_a_record_travels_by_id_to_a_codec_that_registered_nothing(
    settings: Settings, client: RegistryClient
) -> None:
    encoded = registered_codec(settings).encode_command(CANCEL)
    assert encoded[0] == CONFLUENT_MAGIC
    reader = Codec.load(source=client)
    decoded = reader.decode_command(encoded)
    assert isinstance(decoded, CancelOrder) and decoded == CANCEL


def test_ids_survive_a_restart_and_are_shared_by_a_second_registry_process(
    settings: Settings, service_settings: Settings, client: RegistryClient, tmp_path: Any
) -> None:
    assert settings.database_url
    encoded = registered_codec(settings).encode_command(CANCEL)
    schema_id = int.from_bytes(encoded[1:5], "big")
    other = LocalRegistry(conftest.session_ports()[3], tmp_path)
    child = other.start(settings.database_url, die_with_parent=True)
    try:
        answer = httpx.get(f"{other.url}/schemas/ids/{schema_id}").json()
        assert json.loads(answer["schema"]) == client.schema(schema_id)
        again = registered_codec(settings.model_copy(update={"schema_registry_url": other.url}))
        assert again.encode_command(CANCEL) == encoded
    finally:
        other.stop(child=child)


STEPS = [(history.name, version, history.versions[version - 1], history.versions[version])
         for history in load_histories() for version in sorted(history.versions)[1:]]


@pytest.mark.parametrize(("name", "version", "old", "new"), STEPS,
                         ids=[f"{name}.v{v}" for name, v, _, _ in STEPS])
def test_the_registrys_backward_check_agrees_with_the_upcasters(
    client: RegistryClient, name: str, version: int, old: dict[str, Any], new: dict[str, Any]
) -> None:
    probe = f"probe-{uuid.uuid4().hex[:8]}-value"
    client.register(probe, old)
    assert client._call("GET", f"/config/{probe}") == {"compatibilityLevel": "BACKWARD"}
    assert client.is_compatible(probe, new) is (version - 1 not in UPCASTS.get(name, {}))


def test_an_incompatible_schema_is_refused_and_changes_nothing(client: RegistryClient) -> None:
    probe = f"probe-{uuid.uuid4().hex[:8]}-value"
    old = {"type": "record", "name": "P", "fields": [{"name": "a", "type": "long"}]}
    new = {"type": "record", "name": "P",
           "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}
    client.register(probe, old)
    with pytest.raises(RegistryError, match="HTTP 409.*new field without a default"):
        client.register(probe, new)
    assert client._call("GET", f"/subjects/{probe}/versions") == [1]


@pytest.mark.parametrize(("body", "code"), [
    ({"schema": "{not json"}, 42201),
    ({"schema": json.dumps({"type": "record", "name": "X"})}, 42201),
    ({"schema": "\"string\"", "schemaType": "PROTOBUF"}, 42201),
    ({"nothing": 1}, 42201),
])
def test_a_bad_schema_gets_a_422_with_confluents_error_code(
    settings: Settings, body: dict[str, Any], code: int
) -> None:
    response = httpx.post(f"{settings.schema_registry_url}/subjects/bad-value/versions",
                          json=body)
    assert (response.status_code, response.json()["error_code"]) == (422, code)


def test_unknown_ids_subjects_and_versions_get_404s(settings: Settings) -> None:
    url = settings.schema_registry_url
    assert httpx.get(f"{url}/schemas/ids/999999").json()["error_code"] == 40403
    assert httpx.get(f"{url}/subjects/none-value/versions").json()["error_code"] == 40401


def test_a_schema_larger_than_a_postgresql_index_row_registers_and_is_found_again(
    client: RegistryClient,
) -> None:
    # order_event v5 came within 40 bytes of PostgreSQL's btree row limit (2704 bytes after
    # compression) on the schema body's unique index: the next version would have been a 500.
    probe = f"probe-{uuid.uuid4().hex[:8]}-value"
    docs = [uuid.uuid4().hex for _ in range(250)]  # 8 KB of hex: ~4 KB even compressed
    big = {"type": "record", "name": "Big", "doc": "".join(docs),
           "fields": [{"name": "a", "type": "long"}]}
    first = client.register(probe, big)
    assert client.register(probe, big) == first
    assert client.schema(first) == big
