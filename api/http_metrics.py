"""The API process's own Prometheus metrics and the trace context of each request.

Consumes every HTTP request (an ASGI middleware around the app); produces, in the app's own
`CollectorRegistry` (one per app, so two API processes never export the same count):
- `oee_http_request_duration_seconds{method,route,status}` (histogram): request to the end
  of the response body, by route template (`/api/orders/{order_id}`, never the raw path);
- `oee_http_requests_total{method,route,status}`;
and `GET /metrics`, their exposition. Global facts (orders by status) are the projector's.

Each request runs in the trace of its `traceparent` header (a new trace without one), and
answers with the `traceparent` of its span: the command the POST produces carries it on.
"""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, \
    generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.guard import needs
from api.auth.keys import Scope as KeyScope
from telemetry.context import TraceContext, WorkContext, current, set_current
from telemetry.tracing import Tracer

# POST /api/orders/execute is one acknowledged Kafka send: milliseconds, not seconds.
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1,
                          0.25, 0.5, 1, 2.5, 5, 10)
UNMATCHED: Final = "unmatched"  # 404s: one series, whatever path was asked

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics of this API process (admin)",
            dependencies=[Depends(needs(KeyScope.ADMIN))])
async def prometheus(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["method", "route", "status"]
        self.latency = Histogram("oee_http_request_duration_seconds",
                                 "HTTP request latency, by route template.", labels,
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.requests = Counter("oee_http_requests", "HTTP requests answered.", labels,
                                registry=registry)


class Instrumented:
    """ASGI middleware: the request's trace context, then its latency and count."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, tracer: Tracer) -> None:
        self._app, self._metrics, self._tracer = app, metrics, tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        parent = TraceContext.parse(_header(scope, b"traceparent"))
        set_current(WorkContext(trace=self._tracer.continued(parent)))
        with self._tracer.span(f"{scope['method']} {scope['path']}"):
            await self._measured(scope, receive, send)

    async def _measured(self, scope: Scope, receive: Receive, send: Send) -> None:
        trace = current().trace or TraceContext.new()  # this request's span
        began, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"traceparent", trace.traceparent.encode())]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            labels = (scope["method"], _route(scope), str(status))
            self._metrics.latency.labels(*labels).observe(time.perf_counter() - began)
            self._metrics.requests.labels(*labels).inc()


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None
