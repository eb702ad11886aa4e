"""The local schema registry: the Confluent-compatible REST subset our clients and standard
tools use, served from PostgreSQL (`python -m infra.registry_server`, started by the launcher).

Consumes HTTP requests (`application/vnd.schemaregistry.v1+json` or plain JSON) and the
settings `DATABASE_URL`, `SCHEMA_REGISTRY_HOST` and `SCHEMA_REGISTRY_PORT`; produces the
answers of Confluent's Schema Registry API v1 for Avro schemas:

    GET  /subjects                                  subject names
    GET  /subjects/{s}/versions                     version numbers
    POST /subjects/{s}/versions                     register -> {"id"}
    GET  /subjects/{s}/versions/{v|latest}          {"subject","version","id","schema"}
    GET  /schemas/ids/{id}                          {"schema"}
    POST /compatibility/subjects/{s}/versions/{v}   {"is_compatible", "messages"}
    GET  /config, GET/PUT /config/{s}               compatibility level (default BACKWARD)

Errors carry Confluent's `error_code` (40401 subject, 40402 version, 40403 schema, 42201
invalid schema, 42203 invalid level, 409 incompatible). The `_TRANSITIVE` levels check against
the latest version only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastavro import parse_schema
from fastavro.schema import SchemaParseException

from schemas.compat import missing_attributes

from infra.registry_store import LEVELS, Incompatible, RegistryStore, Version, normalised

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryAnswer(Exception):
    """An error answer in Confluent's shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def create_app(store: RegistryStore) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.open()
        yield
        store.close()

    app = FastAPI(title="oee schema registry", lifespan=lifespan, openapi_url=None)

    @app.exception_handler(RegistryAnswer)
    async def _answer(request: Request, error: RegistryAnswer) -> JSONResponse:
        return _json({"error_code": error.code, "message": error.message}, error.status)

    @app.get("/subjects")
    def subjects() -> JSONResponse:
        return _json(store.subjects())

    @app.get("/subjects/{subject}/versions")
    def versions(subject: str) -> JSONResponse:
        found = store.versions(subject)
        if not found:
            raise _no_subject(subject)
        return _json(found)

    @app.post("/subjects/{subject}/versions")
    async def register(subject: str, request: Request) -> JSONResponse:
        body = await _schema_of(request)
        try:
            return _json({"id": store.register(subject, body)})
        except Incompatible as error:
            raise RegistryAnswer(409, 409, f"incompatible with the latest version: {error}") \
                from error

    @app.get("/subjects/{subject}/versions/{version}")
    def version(subject: str, version: str) -> JSONResponse:
        found = _version(store, subject, version)
        return _json({"subject": found.subject, "version": found.version,
                      "id": found.schema_id, "schema": found.schema})

    @app.get("/schemas/ids/{schema_id}")
    def schema(schema_id: int) -> JSONResponse:
        body = store.schema(schema_id)
        if body is None:
            raise RegistryAnswer(404, 40403, f"schema {schema_id} not found")
        return _json({"schema": body})

    @app.post("/compatibility/subjects/{subject}/versions/{version}")
    async def compatibility(subject: str, version: str, request: Request) -> JSONResponse:
        body = await _schema_of(request)
        reasons = store.incompatibilities(subject, body, _version(store, subject, version))
        return _json({"is_compatible": not reasons, "messages": reasons})

    @app.get("/config")
    def config() -> JSONResponse:
        return _json({"compatibilityLevel": store.compatibility(None)})

    @app.get("/config/{subject}")
    def subject_config(subject: str) -> JSONResponse:
        return _json({"compatibilityLevel": store.compatibility(subject)})

    @app.put("/config/{subject}")
    async def set_config(subject: str, request: Request) -> JSONResponse:
        level = (await _body(request)).get("compatibility")
        if level not in LEVELS:
            raise RegistryAnswer(422, 42203, f"invalid compatibility level {level!r}")
        store.set_compatibility(subject, level)
        return _json({"compatibility": level})

    return app


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as error:
        raise RegistryAnswer(422, 42201, f"the request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise RegistryAnswer(422, 42201, "the request body is not a JSON object")
    return body


async def _schema_of(request: Request) -> str:
    """The request's Avro schema, normalised; a bad one is refused with 42201."""
    body = await _body(request)
    if body.get("schemaType", "AVRO") != "AVRO":
        raise RegistryAnswer(422, 42201, "only AVRO schemas are served here")
    text = body.get("schema")
    if not isinstance(text, str):
        raise RegistryAnswer(422, 42201, "the body needs a `schema` string")
    try:
        schema = json.loads(text)
        parse_schema(schema)
        missing = missing_attributes(schema)  # fastavro reads a record without fields as empty
    except (ValueError, SchemaParseException, TypeError, KeyError) as error:
        raise RegistryAnswer(422, 42201, f"invalid Avro schema: {error}") from error
    if missing:
        raise RegistryAnswer(422, 42201, f"invalid Avro schema: {'; '.join(missing)}")
    return normalised(text)


def _version(store: RegistryStore, subject: str, version: str) -> Version:
    if version != "latest" and not version.isdigit():
        raise RegistryAnswer(422, 42202, f"invalid version {version!r}")
    found = store.version(subject, None if version == "latest" else int(version))
    if found is None:
        if not store.versions(subject):
            raise _no_subject(subject)
        raise RegistryAnswer(404, 40402, f"version {version} of {subject} not found")
    return found


def _no_subject(subject: str) -> RegistryAnswer:
    return RegistryAnswer(404, 40401, f"subject {subject} not found")


def main() -> None:
    import uvicorn

    from oee.settings import Settings

    settings = Settings()
    if not settings.database_url:
        raise SystemExit("the schema registry needs DATABASE_URL")
    uvicorn.run(create_app(RegistryStore(settings.database_url)),
                host=settings.schema_registry_host, port=settings.schema_registry_port,
                lifespan="on", log_level="warning")


if __name__ == "__main__":
    main()
