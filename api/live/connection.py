"""One WebSocket connection of the live edge: a stream sends, the client may only leave.

Consumes a started `Stream` (a coroutine that sends messages and returns how to close);
produces the close frame with a code and a reason the client can act on:

    1000  the stream ended normally (an order reached its terminal status)
    1008  the client read too slowly and was dropped; it may reconnect and resume
    1011  the server failed (the read model is unreachable, or lags beyond the deadline)
    1012  the server is shutting down
    1013  retry later: too many topic streams, or the live feed is not reading yet
    4400  a bad request (a parameter the reason names)
    4404  no such order or topic

Keepalive pings are uvicorn's (`ws_ping_interval`, 20 s by default): protocol-level pings
that every browser and client library answers, so messages stay one per event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from api.live.fanout import FeedUnavailable
from api.live.mailbox import FeedStopped, Mailbox, SubscriberTooSlow

log = logging.getLogger(__name__)

NORMAL: Final = 1000
TOO_SLOW: Final = 1008
SERVER_ERROR: Final = 1011
GOING_AWAY: Final = 1012
TRY_AGAIN_LATER: Final = 1013
BAD_REQUEST: Final = 4400
UNAUTHENTICATED: Final = 4401  # no key, or a bad or revoked one (HTTP would say 401)
FORBIDDEN: Final = 4403  # the key's scope is too small
NOT_FOUND: Final = 4404
# A stalled client may never read our close frame; do not wait for it forever.
CLOSE_TIMEOUT_S: Final = 5.0
# What a send raises when the client is already gone (uvicorn's ClientDisconnected is an OSError).
_GONE: Final = (WebSocketDisconnect, OSError)


@dataclass(frozen=True, slots=True)
class Closing:
    """How a stream ends: a WebSocket close code and a reason (at most 123 bytes)."""

    code: int
    reason: str


class StreamClosed(Exception):
    """Raised inside a stream to end it with `closing`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.closing = Closing(code, reason)


Stream = Callable[["Connection"], Awaitable[Closing]]
"""A stream: sends messages on a connection, returns (or raises `StreamClosed`) how to close."""


class Connection:
    """Runs one stream on one accepted WebSocket and closes it with the right code."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._sender: asyncio.Task[Closing] | None = None
        self._dropped: Closing | None = None

    async def send(self, text: str) -> None:
        await self._websocket.send_text(text)

    def watch(self, feed: Mailbox[Any]) -> None:
        """Drop this connection as soon as `feed` overflows, even in the middle of a send."""
        feed.on_overflow = self._drop

    async def run(self, stream: Stream) -> None:
        """Accept, run `stream` until it ends or the client leaves, then close."""
        await self._websocket.accept()
        self._sender = asyncio.create_task(self._guarded(stream))
        receiver = asyncio.create_task(self._until_client_leaves())
        try:
            await asyncio.wait({self._sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            receiver.cancel()
            self._sender.cancel()
            await asyncio.gather(receiver, self._sender, return_exceptions=True)
        closing = self._closing_of(self._sender)
        if closing is not None and not _client_left(receiver):
            await self._close(closing)

    async def _guarded(self, stream: Stream) -> Closing:
        try:
            return await stream(self)
        except StreamClosed as closed:
            return closed.closing
        except SubscriberTooSlow as slow:
            return Closing(TOO_SLOW, str(slow))
        except FeedStopped:
            return Closing(GOING_AWAY, "the server is shutting down; reconnect to resume")
        except FeedUnavailable as unavailable:
            return Closing(TRY_AGAIN_LATER, str(unavailable))

    def _drop(self) -> None:
        """The feed overflowed: the sender may be stuck in a send, so cancel it."""
        self._dropped = Closing(TOO_SLOW, "slow consumer: fell too far behind the live feed; "
                                          "reconnect to resume (order streams: with afterSeq)")
        if self._sender is not None:
            self._sender.cancel()

    def _closing_of(self, sender: asyncio.Task[Closing]) -> Closing | None:
        if self._dropped is not None:
            return self._dropped
        if sender.cancelled():
            return None  # the client left first
        error = sender.exception()
        if error is None:
            return sender.result()
        if isinstance(error, _GONE):
            return None
        log.error("live stream failed", exc_info=error)
        return Closing(SERVER_ERROR, "internal error")

    async def _until_client_leaves(self) -> None:
        while (await self._websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say on these streams; ignore what they send

    async def _close(self, closing: Closing) -> None:
        try:
            # A close frame's reason holds at most 123 bytes of UTF-8.
            reason = closing.reason.encode()[:123].decode(errors="ignore")
            await asyncio.wait_for(self._websocket.close(closing.code, reason), CLOSE_TIMEOUT_S)
        except (TimeoutError, RuntimeError, *_GONE):
            pass  # the client is gone or stalled; uvicorn drops the transport


def _client_left(receiver: asyncio.Task[None]) -> bool:
    """Did the client leave (as opposed to our cancelling the receiver)?"""
    return receiver.done() and not receiver.cancelled() and receiver.exception() is None
