"""Request bodies: read with a size limit, decoded exactly, validated against a model.

Consumes a Starlette request (or its raw bytes) and a pydantic model of the body; produces the
validated model, or an `ApiError` whose `detail` names each offending field as the client
spelled it: 413 (too large), 400 `malformed_json` (not JSON), 400 `invalid_request` (not an
object, a key given twice, an unknown, missing or mistyped field). Numbers stay text
(`exact_json`) until the field that owns them converts them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import ApiError, FieldError, InvalidRequest, MalformedRequest, invalid
from api.exact_json import DuplicateKey, JsonNumber, MalformedJson, loads_exact

Model = TypeVar("Model", bound=BaseModel)

# Order bodies are a few hundred bytes; nothing the edge accepts needs more than this.
MAX_BODY_BYTES: Final = 16 * 1024


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 beyond `MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def read_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object with numbers kept as text (400 if it is not JSON at all)."""
    if not body.strip():
        raise MalformedRequest("the body is empty; expected a JSON object")
    try:
        document = loads_exact(body)
    except MalformedJson as exc:
        raise MalformedRequest(str(exc)) from None
    except DuplicateKey as exc:
        raise invalid(exc.key, "is given more than once") from None
    if not isinstance(document, dict):
        raise invalid("body", f"expected a JSON object, got {_json_kind(document)}")
    return document


def validated(model: type[Model], document: dict[str, Any]) -> Model:
    """`document` as `model`; every pydantic error becomes a `FieldError` with a plain message."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        known = tuple(field.alias or name for name, field in model.model_fields.items())
        raise InvalidRequest([_field_error(error, known) for error in exc.errors()]) from None


def _field_error(error: Any, known: Sequence[str]) -> FieldError:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    match error["type"]:
        case "extra_forbidden":
            # A typo must be loud: "amountln" silently ignored would mean "amount missing" at
            # best, and a default slippage for "slipage" at worst.
            close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(known)}"
            return FieldError(field, f"unknown field; {hint}")
        case "missing":
            return FieldError(field, "is required")
        case "string_type":
            return FieldError(field, "must be a string")
        case _:
            return FieldError(field, str(error["msg"]))


def _too_large() -> ApiError:
    message = f"the body is larger than {MAX_BODY_BYTES} bytes"
    return ApiError(413, "body_too_large", message, (FieldError("body", message),))


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, JsonNumber):
        return "a number"
    return "null" if value is None else "a boolean"
