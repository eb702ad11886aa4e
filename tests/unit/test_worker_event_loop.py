"""The workers' event loop (STREAM_EVENT_LOOP): every loop made after the choice is of its kind,
the consumer thread's too."""

from __future__ import annotations

import asyncio
import threading

import uvloop

from oee.settings import EventLoop, Settings
from streams.worker import use_event_loop


def test_uvloop_is_the_default_and_every_later_loop_is_one() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        use_event_loop(Settings().stream_event_loop)
        made: list[asyncio.AbstractEventLoop] = []
        thread = threading.Thread(target=lambda: made.append(asyncio.new_event_loop()))
        thread.start()
        thread.join()
        assert isinstance(made[0], uvloop.Loop)
        made[0].close()
        use_event_loop(EventLoop.ASYNCIO)
        plain = asyncio.new_event_loop()
        assert not isinstance(plain, uvloop.Loop)
        plain.close()
    finally:
        asyncio.set_event_loop_policy(before)
