"""A process's own loopback HTTP port: `GET /metrics` (Prometheus) and `GET /health`.

Consumes a prometheus `CollectorRegistry` and a health check (a function returning whether
the process is healthy and why); produces a tiny HTTP/1.1 server bound to 127.0.0.1 only, for
the processes that have no web server of their own (the stream worker, whose Faust web server
stays off, and the projector). `/health` answers 200 or 503 with a JSON body. Port 0 asks the
OS for a free port: `MetricsServer.port` tells which, and the process logs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"
_READ_TIMEOUT_S: Final = 5.0
_REASONS: Final = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Unavailable"}

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class MetricsServer:
    """`async with MetricsServer(registry, health, port)`: serves until the block ends."""

    def __init__(self, registry: CollectorRegistry, health: HealthCheck, port: int,
                 name: str) -> None:
        self._registry, self._health, self._wanted, self._name = registry, health, port, name
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> MetricsServer:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self._wanted)
        log.warning("%s metrics on http://%s:%d/metrics, health on /health",
                    self._name, LOOPBACK, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                request = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = self._answer(method, path)
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # a client that went away or never finished asking gets nothing
        finally:
            writer.close()

    def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET only\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path == "/health":
            ok, detail = self._health()
            body = orjson.dumps({"status": "ok" if ok else "unhealthy", **detail})
            return (200 if ok else 503), "application/json", body
        return 404, "text/plain", b"/metrics or /health\n"
