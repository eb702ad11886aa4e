"""A client of a Confluent-compatible schema registry, and the registration of our schemas.

Consumes the registry's REST API (`POST /subjects/{s}/versions`, `GET /schemas/ids/{id}`,
`POST /compatibility/subjects/{s}/versions/{v}`, `PUT /config/{s}`); produces the registry ids
of every committed version of each schema (`register_histories`), which the codec writes in
each record's header, and the schema behind an id it has not seen (`schema`).

Subjects follow the TopicNameStrategy: `<topic>-value`. Every version in schemas/history is
registered in order under the subject of each topic that carries the schema, so a registry
holds the same history as the repository and an id names one version for every process.
Compatibility is the contract tests' job (Avro resolution plus the upcasters, which no
registry can see), so our subjects are registered with compatibility NONE; the contract tests
ask the registry's own BACKWARD check of every step that has no upcaster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol

import httpx

from schemas.versions import Schema, SchemaHistory

CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
TIMEOUT_S: Final = 10.0

# Registry ids of one schema's versions: {version: id}.
VersionIds = Mapping[int, int]


class RegistryError(RuntimeError):
    """The registry is unreachable or refused a request (the message says which and why)."""


class SchemaNotFound(RegistryError):
    """The registry answered that it never issued this schema id."""


class SchemaSource(Protocol):
    """Where the codec looks up a schema id it has not seen (another process registered it)."""

    def schema(self, schema_id: int) -> Schema: ...


def subject(topic: str) -> str:
    """The TopicNameStrategy subject of a topic's record values."""
    return f"{topic}-value"


class RegistryClient:
    """A synchronous client (start-up registration and rare id look-ups only)."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s,
                                  headers={"Accept": CONTENT_TYPE})

    def close(self) -> None:
        self._http.close()

    def register(self, subject_name: str, schema: Schema) -> int:
        """The id of `schema` under `subject_name`, registering it if it is new there."""
        body = self._call("POST", f"/subjects/{subject_name}/versions", {"schema": _text(schema)})
        return int(body["id"])

    def schema(self, schema_id: int) -> Schema:
        """The schema of `schema_id`; SchemaNotFound if the registry never issued it."""
        try:
            body = self._call("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as error:
            if "HTTP 404" in str(error):
                raise SchemaNotFound(f"schema id {schema_id} is not in the registry") from error
            raise
        parsed = json.loads(body["schema"])
        if not isinstance(parsed, dict):
            raise RegistryError(f"schema id {schema_id} is not a record schema")
        return parsed

    def is_compatible(self, subject_name: str, schema: Schema, version: str = "latest") -> bool:
        """The registry's own verdict under the subject's compatibility level."""
        body = self._call("POST", f"/compatibility/subjects/{subject_name}/versions/{version}",
                          {"schema": _text(schema)})
        return bool(body["is_compatible"])

    def set_compatibility(self, subject_name: str, level: str) -> None:
        self._call("PUT", f"/config/{subject_name}", {"compatibility": level})

    def subjects(self) -> list[str]:
        return [str(name) for name in self._call("GET", "/subjects")]

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        content = None if payload is None else json.dumps(payload)
        headers = {} if payload is None else {"Content-Type": CONTENT_TYPE}
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as error:
            raise RegistryError(f"schema registry at {self.url} is not reachable: {error}") \
                from error
        if response.status_code >= 400:
            raise RegistryError(f"schema registry: {method} {path}: HTTP {response.status_code} "
                                f"{response.text[:300]}")
        return response.json()


def register_histories(
    registry: RegistryClient, histories: Sequence[tuple[SchemaHistory, Sequence[str]]]
) -> dict[str, VersionIds]:
    """Register every version of each history, oldest first, under each of its topics'
    subjects; return each schema's {version: id}.

    Idempotent: a version already registered keeps its id. A registry that hands one schema
    different ids under two subjects would make a record's id ambiguous: refused.
    """
    ids: dict[str, VersionIds] = {}
    for history, topics in histories:
        versions: dict[int, int] = {}
        for topic in topics:
            registry.set_compatibility(subject(topic), "NONE")
            for version in sorted(history.versions):
                schema_id = registry.register(subject(topic), history.versions[version])
                if versions.setdefault(version, schema_id) != schema_id:
                    raise RegistryError(
                        f"{history.name} v{version}: id {schema_id} under {subject(topic)} "
                        f"but {versions[version]} under another subject"
                    )
        ids[history.name] = MappingProxyType(versions)
    return ids


def _text(schema: Schema) -> str:
    return json.dumps(schema, separators=(",", ":"))
