"""JSON decoding that keeps every number as the text the client wrote.

Consumes a request body (bytes); produces plain Python values in which each JSON number is a
`JsonNumber` holding its source text. Money must never pass through a float: pydantic turns a
JSON number into a Decimal via a float (pydantic#9180), so `1.1` would arrive as
1.100000000000000088817841970012523. Keeping the text lets the field that owns the number
(an amount, a slippage) apply its own strict pattern and convert exactly with integers.

Also rejected here, because `json.loads` would otherwise accept them silently: a key given
twice in one object (the last one would win), invalid UTF-8 and absurd nesting.
`NaN` / `Infinity` are not valid JSON, but Python accepts them; they come out as a
`JsonNumber` so the field they were given for reports them with its own name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A JSON number, exactly as written in the document ("1.10", "-0", "1e400", "NaN")."""

    text: str


class MalformedJson(ValueError):
    """The body is not a JSON document (a 400, not a field error)."""


class DuplicateKey(ValueError):
    """An object names the same key twice; which value the client meant is unknowable."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key!r} is given more than once")
        self.key = key


def loads_exact(body: bytes) -> Any:
    """Decode `body` as UTF-8 JSON with numbers kept as `JsonNumber` text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_float=JsonNumber,
            parse_int=JsonNumber,
            parse_constant=JsonNumber,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedJson("the body is nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in pairs:
        if key in decoded:
            raise DuplicateKey(key)
        decoded[key] = value
    return decoded
