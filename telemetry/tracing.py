"""Optional OpenTelemetry spans, joined to the `traceparent` our records and requests carry.

Consumes `Settings.otel_enabled` and the standard OTEL_* environment (OTEL_SDK_DISABLED=true
always wins; OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ... configure the exporter);
produces a `Tracer` whose `span(name)` starts a span as the child of the current
`telemetry.context` trace and makes the span the current trace, so the records produced in it
name it as their parent. Off (the default) the tracer is `NO_TRACING`: `span` returns one
shared do-nothing context manager, and the OpenTelemetry SDK is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final

from telemetry.context import TraceContext, WorkContext, current, set_current

_NOTHING: Final = nullcontext()


class Tracer:
    """Off: every span is the same no-op. `OtelTracer` is the one that records."""

    enabled = False

    def continued(self, parent: TraceContext | None) -> TraceContext:
        """The trace of work caused by `parent` (a request's header, a record's) before its
        span starts: off, a span id of its own now; on, the parent, which `span` continues."""
        return parent.child() if parent is not None else TraceContext.new()

    def span(self, name: str, **attributes: str) -> AbstractContextManager[Any]:
        return _NOTHING


NO_TRACING: Final = Tracer()


class OtelTracer(Tracer):
    enabled = True

    def continued(self, parent: TraceContext | None) -> TraceContext:
        return parent or TraceContext.new()

    def __init__(self, service: str) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(_exporter()))
        self._provider, self._trace = provider, trace
        self._tracer = provider.get_tracer("oee")

    def span(self, name: str, **attributes: str) -> AbstractContextManager[Any]:
        return self._span(name, attributes)

    @contextmanager
    def _span(self, name: str, attributes: dict[str, str]) -> Iterator[Any]:
        trace = self._trace
        work = current()
        parent = None
        if work.trace is not None:
            remote = trace.SpanContext(int(work.trace.trace_id, 16), int(work.trace.span_id, 16),
                                       is_remote=True,
                                       trace_flags=trace.TraceFlags(int(work.trace.sampled)))
            parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        with self._tracer.start_as_current_span(name, context=parent,
                                                attributes=attributes) as span:
            ids = span.get_span_context()
            set_current(WorkContext(work.order_id, work.correlation_id, work.seq, TraceContext(
                f"{ids.trace_id:032x}", f"{ids.span_id:016x}", bool(ids.trace_flags & 1))))
            try:
                yield span
            finally:
                set_current(work)

    def shutdown(self) -> None:
        self._provider.shutdown()


def _exporter() -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # the SDK without the OTLP exporter: spans go to stderr
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    return OTLPSpanExporter()


def tracer_of(enabled: bool, service: str) -> Tracer:
    """The process's tracer: OpenTelemetry when enabled and not disabled by the SDK's own
    switch; a clear error when enabled but the `otel` extra is not installed."""
    if not enabled or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return NO_TRACING
    try:
        return OtelTracer(os.environ.get("OTEL_SERVICE_NAME") or f"oee-{service}")
    except ImportError as error:
        raise SystemExit("OTEL_ENABLED needs the tracing packages: pip install 'oee[otel]'") \
            from error
