"""Every error the HTTP edge answers, in one body format, and the handlers that render them.

Consumes `ApiError`s raised by the routers (and FastAPI's own `RequestValidationError`);
produces JSON bodies of one shape, whatever went wrong:

    {"error": "invalid_request", "message": "amountIn: ...",
     "detail": [{"field": "amountIn", "message": "..."}]}

`error` is a stable machine-readable code, `detail` names each offending field (a body field,
a query parameter or a header, spelled as the client spells it), `message` is for humans.

A service that is out of reach is the server's trouble, not a bug: PostgreSQL (a psycopg
`OperationalError`, the pool's timeout included) answers 503 `read_model_unavailable` and
Kafka (an aiokafka `KafkaError` on a read route) 503 `kafka_unavailable`, both with
`Retry-After`, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import psycopg
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 2  # what a client waits before asking again while a service is down


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one field, named as the client named it."""

    field: str
    message: str


class ApiError(Exception):
    """An answer other than success: a status, a stable code and the fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = tuple(detail)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # body fields beyond the three (ErrorBody's optional ones)


class InvalidRequest(ApiError):
    """400: the request is well-formed JSON but some fields are wrong (every one is listed).

    400 rather than 422: the engines this one replaced answered a bad field with 400, and
    their clients test for it (docs/COMPATIBILITY.md); `error` tells the two 400s apart.
    """

    def __init__(self, detail: Sequence[FieldError]) -> None:
        summary = "; ".join(f"{error.field}: {error.message}" for error in detail)
        super().__init__(400, "invalid_request", summary or "invalid request", detail)


class MalformedRequest(ApiError):
    """400: the body cannot be read as a JSON document at all."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "malformed_json", message, (FieldError("body", message),))


def invalid(field: str, message: str) -> InvalidRequest:
    """A 400 `invalid_request` about a single field."""
    return InvalidRequest((FieldError(field, message),))


# --- public shapes (OpenAPI) ----------------------------------------------------------------


class FieldErrorBody(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_request",
                    "message": "amountIn: amount '1.0000000001' has 10 fractional digits; "
                    "SOL allows at most 9",
                    "detail": [
                        {
                            "field": "amountIn",
                            "message": "amount '1.0000000001' has 10 fractional digits; "
                            "SOL allows at most 9",
                        }
                    ],
                }
            ]
        }
    )

    error: str
    message: str
    detail: list[FieldErrorBody]
    # Only in the answers to a command that was not (or not surely) executed: the order it
    # names, and (504) the deadline by which it had to be appended to count.
    orderId: str | None = None
    acceptBy: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "`invalid_request`: a field is invalid and "
          "`detail` names it; `malformed_json`: the body is not a JSON document."},
    503: {"model": ErrorBody, "description": "Not executed, and never will be: Kafka is down "
          "(`kafka_unavailable`, nothing was sent) or appended the command after its accept-by "
          "deadline (`accept_deadline_passed`). `orderId` names the order; retry after "
          "`Retry-After` seconds."},
    504: {"model": ErrorBody, "description": "`outcome_unknown`: no acknowledgement from Kafka "
          "in time. The command counts if and only if Kafka appended it by `acceptBy`; "
          "`GET /api/orders/{orderId}` tells after then."},
    # A 4XX entry also stops FastAPI from documenting its own 422, which this API never sends.
    "4XX": {"model": ErrorBody, "description": "Any other client error, in the same body."},
}
READ_MODEL_DOWN: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorBody, "description": "PostgreSQL (or Kafka) is out of reach: retry "
          "after `Retry-After` seconds."},
}


# --- rendering --------------------------------------------------------------------------------


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorBody(
        error=error.code,
        message=error.message,
        detail=[FieldErrorBody(field=e.field, message=e.message) for e in error.detail],
        **error.extra,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=error.status,
                        headers=error.headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation (query, header, path), in the API's error body."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        FieldError(
            _field_name(error["loc"]),
            "is required" if error["type"] == "missing" else str(error["msg"]),
        )
        for error in exc.errors()
    ]
    return error_response(InvalidRequest(detail))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing answers (404 unknown path, 405 wrong method) in the same body as the rest."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers))


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("read model unreachable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(_unavailable("read_model_unavailable",
                                       "the read model (PostgreSQL) is unreachable"))


async def _on_kafka_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Kafka unreachable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(_unavailable("kafka_unavailable", "Kafka is unreachable"))


def _unavailable(code: str, what: str) -> ApiError:
    return ApiError(503, code, f"{what}; retry in {RETRY_AFTER_S} s",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug: logged with its traceback here; the client gets the usual body, no internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal_error", "internal error"))


def _field_name(loc: Sequence[object]) -> str:
    # FastAPI prefixes the location ("body", "query", "header", "path"): the client only
    # knows the parameter's own name.
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "header", "path", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(psycopg.OperationalError, _on_database_down)
    app.add_exception_handler(KafkaError, _on_kafka_down)
    app.add_exception_handler(Exception, _on_unexpected)
