"""A minimal keep-alive HTTP/1.1 client for load generation.

The benchmark shares two cores with the system it measures, so its client must cost little:
httpx spends about a millisecond of CPU per request and its pool slows down as connections
grow (measured: 304 POST/s with 1 client, 202/s with 64, against the same server). This client
speaks only what the benchmark needs — POST/GET with a JSON body, Content-Length responses —
over N persistent connections.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


class ConnectionClosed(ConnectionError):
    """The server had closed the keep-alive connection (uvicorn closes one idle for 5 s)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str, headers: dict[str, str] | None = None) -> None:
        self._reader, self._writer, self._host = reader, writer, host
        self._extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())

    async def request(self, method: str, path: str, payload: object | None = None) -> Response:
        body = orjson.dumps(payload) if payload is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{self._extra}\r\n")
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionClosed("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return Response(status, await self._reader.readexactly(length))

    def close(self) -> None:
        self._writer.close()


class ConnectionPool:
    """`size` keep-alive connections; a request waits for a free one."""

    def __init__(self, host: str, port: int, size: int,
                 headers: dict[str, str] | None = None) -> None:
        self._host, self._port, self._size, self._headers = host, port, size, headers
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        self._all: list[Connection] = []

    async def __aenter__(self) -> ConnectionPool:
        for _ in range(self._size):
            self._idle.put_nowait(await self._open())
        return self

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        connection = Connection(reader, writer, f"{self._host}:{self._port}", self._headers)
        self._all.append(connection)
        return connection

    async def __aexit__(self, *exc: object) -> None:
        for connection in self._all:
            connection.close()

    async def post(self, path: str, payload: object) -> Response:
        return await self._request("POST", path, payload)

    async def get(self, path: str) -> Response:
        return await self._request("GET", path)

    async def _request(self, method: str, path: str, payload: object | None = None) -> Response:
        connection = await self._idle.get()
        try:
            try:
                return await connection.request(method, path, payload)
            except ConnectionClosed:  # idle too long at a slow rate: the server never read it
                connection.close()
                self._all.remove(connection)
                connection = await self._open()
                return await connection.request(method, path, payload)
        finally:
            self._idle.put_nowait(connection)
