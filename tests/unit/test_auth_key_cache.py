"""The key cache of the API's authenticator under concurrency: when a key's cached answer runs
out while many requests of that key are in flight, the store is asked once, not once per
request (a saturated edge flooded its 16-connection pool with identical lookups and answered
503 `read_model_unavailable` when the pool timed out)."""

from __future__ import annotations

import asyncio

import pytest

from api.auth.guard import Authenticator, Unauthenticated
from api.auth.keys import Scope, key_text, secret_hash
from api.auth.limits import RateLimiter, SocketSlots
from api.auth.store import StoredKey

SERVER = b"s" * 32
KEY_ID, SECRET = "0123456789abcdef", "A" * 43


class SlowStore:
    """Answers after the test opens the gate, counting every lookup."""

    def __init__(self, stored: StoredKey | None) -> None:
        self.stored, self.lookups = stored, 0
        self.gate = asyncio.Event()

    async def find(self, key_id: str) -> StoredKey | None:
        self.lookups += 1
        await self.gate.wait()
        if isinstance(self.stored, Exception):
            raise self.stored
        return self.stored


def guard(store: SlowStore, now: list[float]) -> Authenticator:
    return Authenticator(enabled=True, secret=SERVER, keys=store, cache_s=1.0,
                         limiter=RateLimiter(1000.0, 1000, lambda: now[0]),
                         sockets=SocketSlots(10, 10), clock=lambda: now[0])


def live_key() -> StoredKey:
    return StoredKey(Scope.TRADE, secret_hash(SERVER, KEY_ID, SECRET), revoked=False)


async def test_concurrent_requests_of_one_key_share_one_lookup() -> None:
    store, now = SlowStore(live_key()), [0.0]
    auth = guard(store, now)
    asking = [asyncio.ensure_future(auth.principal(key_text(KEY_ID, SECRET))) for _ in range(50)]
    await asyncio.sleep(0)
    store.gate.set()
    principals = await asyncio.gather(*asking)
    assert store.lookups == 1
    assert {p.key_id for p in principals} == {KEY_ID}
    now[0] = 5.0  # the answer ran out: asked again, once
    await asyncio.gather(*(auth.principal(key_text(KEY_ID, SECRET)) for _ in range(20)))
    assert store.lookups == 2


async def test_a_failed_shared_lookup_fails_every_waiter_and_is_not_cached() -> None:
    store, now = SlowStore(None), [0.0]
    store.stored = OSError("database down")  # type: ignore[assignment]
    auth = guard(store, now)
    asking = [asyncio.ensure_future(auth.principal(key_text(KEY_ID, SECRET))) for _ in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    outcomes = await asyncio.gather(*asking, return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes)
    assert store.lookups == 1
    store.stored = live_key()
    assert (await auth.principal(key_text(KEY_ID, SECRET))).key_id == KEY_ID
    assert store.lookups == 2


async def test_an_unknown_key_is_refused_for_every_waiter() -> None:
    store, now = SlowStore(None), [0.0]
    auth = guard(store, now)
    asking = [asyncio.ensure_future(auth.principal(key_text(KEY_ID, SECRET))) for _ in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    outcomes = await asyncio.gather(*asking, return_exceptions=True)
    assert all(isinstance(o, Unauthenticated) for o in outcomes)
    assert store.lookups == 1
