"""What the current task is working on: one order's ids and its W3C trace context.

Consumes the ids a process learns as it handles a request or a record (order id,
correlation id, seq, the incoming `traceparent`); produces them to whoever asks in the same
task: the log filter (`orderId`, `correlationId`, `seq` on every line), the record-header
builder (`traceparent` and correlation id on every record produced) and the optional tracer.
A `ContextVar` is what makes this cheap and safe: asyncio tasks copy it when they are
created, so a stage's task per work item carries the context of the record that spawned it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Final

_TRACEPARENT: Final = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE: Final = "0" * 32
_INVALID_SPAN: Final = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context: the trace, the span that is current, and the sampled flag."""

    trace_id: str
    span_id: str
    sampled: bool = True

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @classmethod
    def parse(cls, value: str | bytes | None) -> TraceContext | None:
        """The context of a `traceparent` header, or None when absent or malformed (a
        malformed one starts a new trace rather than failing the record)."""
        if value is None:
            return None
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        match = _TRACEPARENT.match(text.strip().lower())
        if match is None or match[1] == _INVALID_TRACE or match[2] == _INVALID_SPAN:
            return None
        return cls(match[1], match[2], int(match[3], 16) & 1 == 1)

    def child(self) -> TraceContext:
        """The next span of the same trace (what a produced record's header names)."""
        return replace(self, span_id=secrets.token_hex(8))

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


@dataclass(frozen=True, slots=True)
class WorkContext:
    """The order (if any) and trace the current task works for; every field optional."""

    order_id: str | None = None
    correlation_id: str | None = None
    seq: int | None = None
    trace: TraceContext | None = None


_CURRENT: ContextVar[WorkContext] = ContextVar("oee_work_context", default=WorkContext())


def current() -> WorkContext:
    return _CURRENT.get()


@contextmanager
def bound(**fields: object) -> Iterator[WorkContext]:
    """Within the block, the current context with `fields` replaced (None keeps a field)."""
    now = _CURRENT.get()
    changes = {name: value for name, value in fields.items() if value is not None}
    token = _CURRENT.set(replace(now, **changes))  # type: ignore[arg-type]
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def set_current(context: WorkContext) -> None:
    """Make `context` current for the rest of this task (a request's middleware, a record's
    loop iteration: the next one replaces it)."""
    _CURRENT.set(context)
