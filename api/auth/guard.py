"""Who is asking: the key of a request or WebSocket, checked, cached briefly, rate-limited.

Consumes the `Authorization: Bearer <key>` or `X-API-Key` header (WebSockets: the same, or
`?token=<key>`, since browsers cannot set headers on a WebSocket); produces the `Principal`
of the request, or a 401 (no key, an unknown, malformed or revoked one), a 403 (a scope too
small) or a 429 (the key's bucket is empty). With AUTH_MODE=off every request acts as
`ANONYMOUS_ADMIN` and nothing is checked or limited.

What was read of a key is trusted for `cache_s` (AUTH_KEY_CACHE_S, at most 1 s), unknown
keys included, so a revocation reaches every API process within that time and a flood of
bad keys costs the database one read per key id per period. When the answer runs out while
many requests of the key are in flight, they share one read (a saturated edge otherwise sent
hundreds of identical reads at once, filled its pool and answered 503). The key's text never appears
in an error, a log line or a metric: only its id does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from api.auth.keys import ANONYMOUS_ADMIN, KEY_PREFIX, Principal, Scope, matches, parse_key
from api.auth.limits import RateLimiter, SocketSlots
from api.auth.store import StoredKey
from api.errors import ApiError

BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="`Authorization: Bearer <key>`; `oee keys create` makes one.")
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                       description="The same key in `X-API-Key`.")


class KeyLookup(Protocol):
    async def find(self, key_id: str) -> StoredKey | None: ...


class Unauthenticated(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthenticated", message,
                         headers={"WWW-Authenticate": 'Bearer realm="oee"'})


@dataclass
class _Cached:
    stored: StoredKey | None
    until: float


class Authenticator:
    """Checks presented keys against the store, with a short cache; one per API process."""

    def __init__(self, *, enabled: bool, secret: bytes, keys: KeyLookup, cache_s: float,
                 limiter: RateLimiter, sockets: SocketSlots, clock: Callable[[], float]) -> None:
        self.enabled = enabled
        self._secret, self._keys, self._cache_s, self._clock = secret, keys, cache_s, clock
        self._cache: dict[str, _Cached] = {}
        self._reading: dict[str, asyncio.Future[StoredKey | None]] = {}  # key id -> the read
        self.limiter = limiter
        self.sockets = sockets

    async def principal(self, presented: str | None) -> Principal:
        """The principal of the key text `presented` (None: no key was sent)."""
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not presented:
            raise Unauthenticated("an API key is required: send `Authorization: Bearer <key>` "
                                  "or `X-API-Key: <key>`")
        key = parse_key(presented)
        if key is None:
            raise Unauthenticated("the API key is malformed")
        stored = await self._stored(key.key_id)
        if stored is None or not matches(self._secret, key, stored.secret_hash):
            raise Unauthenticated("the API key is not valid")
        if stored.revoked:
            raise Unauthenticated(f"API key {key.key_id} is revoked")
        return Principal(key.key_id, stored.scope)

    async def _stored(self, key_id: str) -> StoredKey | None:
        cached = self._cache.get(key_id)
        if cached is not None and cached.until > self._clock():
            return cached.stored
        reading = self._reading.get(key_id)
        if reading is None:
            reading = self._reading[key_id] = asyncio.ensure_future(self._read(key_id))
            reading.add_done_callback(lambda _: self._reading.pop(key_id, None))
        # shielded: one waiter's cancellation (a client gone) must not cancel the others' read
        return await asyncio.shield(reading)

    async def _read(self, key_id: str) -> StoredKey | None:
        stored = await self._keys.find(key_id)  # a failure is not cached: the next one asks
        if len(self._cache) > 100_000:  # bounded: forget everything rather than grow
            self._cache.clear()
        self._cache[key_id] = _Cached(stored, self._clock() + self._cache_s)
        return stored


def authenticator(connection: HTTPConnection) -> Authenticator:
    found = getattr(connection.app.state, "edge", None)
    guard = getattr(found, "auth", None)
    if not isinstance(guard, Authenticator):
        raise RuntimeError("the app is not started: its lifespan builds the authenticator")
    return guard


async def http_principal(
    connection: HTTPConnection,
    response: Response,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    api_key: Annotated[str | None, Security(API_KEY)],
) -> Principal:
    """The principal of an HTTP request, after one token of its key's bucket."""
    guard = authenticator(connection)
    principal = await guard.principal(bearer.credentials if bearer else api_key)
    if principal.key_id is None:
        return principal
    allowance = guard.limiter.take(principal.key_id)
    if not allowance.allowed:
        raise ApiError(429, "rate_limited", f"API key {principal.key_id} is over its rate "
                       "limit; retry after Retry-After seconds", headers=allowance.headers())
    response.headers.update(allowance.headers())
    return principal


def presented_on_socket(connection: HTTPConnection) -> str | None:
    """A WebSocket's key: a header as for HTTP, else `?token=` (a value shaped like a key;
    the all-orders stream's `token` filter takes token symbols in the same parameter)."""
    header = connection.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if connection.headers.get("x-api-key"):
        return connection.headers["x-api-key"]
    for value in connection.query_params.getlist("token"):
        for part in value.split(","):
            if part.strip().startswith(KEY_PREFIX):
                return part.strip()
    return None


def needs(scope: Scope) -> Callable[..., object]:
    """A route dependency: the principal, if its scope includes `scope` (else 403)."""

    async def check(principal: Annotated[Principal, Depends(http_principal)]) -> Principal:
        if not principal.may(scope):
            raise ApiError(403, "forbidden", f"this needs a key with the {scope.value} scope "
                           f"(this key has {principal.scope.value})")
        return principal

    return check


Reader = Annotated[Principal, Depends(needs(Scope.READ))]
Trader = Annotated[Principal, Depends(needs(Scope.TRADE))]
Admin = Annotated[Principal, Depends(needs(Scope.ADMIN))]
