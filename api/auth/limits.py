"""Per-key limits of one API process: a token bucket of requests, caps on open WebSockets.

Consumes a key id per request or connection and a monotonic clock; produces a verdict (and
the figures of the `RateLimit-*` headers). Pure bookkeeping in memory: each API process
limits what reaches it, so N processes behind a balancer allow N times the rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Allowance:
    """The outcome of taking one token, as the RateLimit headers tell it."""

    allowed: bool
    limit: int  # the bucket size
    remaining: int  # whole tokens left after this request
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # seconds until one token is back (0 when allowed)

    def headers(self) -> dict[str, str]:
        found = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                 "RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after_s)
        return found


class RateLimiter:
    """One token bucket per key: `burst` tokens, refilled at `per_s` a second."""

    def __init__(self, per_s: float, burst: int, clock: Callable[[], float]) -> None:
        self._per_s, self._burst, self._clock = per_s, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> Allowance:
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        missing = self._burst - tokens
        return Allowance(
            allowed=allowed, limit=self._burst, remaining=int(tokens),
            reset_s=math.ceil(missing / self._per_s),
            retry_after_s=0 if allowed else max(1, math.ceil((1.0 - tokens) / self._per_s)),
        )


class SocketsFull(Exception):
    """No room for one more WebSocket; the message says whose cap it hit."""


class SocketSlots:
    """Counts open WebSockets per key and in the process; `take` raises when a cap is hit."""

    def __init__(self, per_key: int, per_process: int) -> None:
        self._per_key, self._per_process = per_key, per_process
        self._by_key: dict[str | None, int] = {}
        self._total = 0

    def take(self, key: str | None) -> Callable[[], None]:
        """Hold one slot for `key` (None: auth is off, the process cap only); returns the
        function that gives it back, to call exactly once."""
        if self._total >= self._per_process:
            raise SocketsFull(f"this server has {self._total} streams open, its limit; "
                              "retry later")
        held = self._by_key.get(key, 0)
        if key is not None and held >= self._per_key:
            raise SocketsFull(f"this key has {held} streams open, its limit; close one first")
        self._by_key[key] = held + 1
        self._total += 1
        return lambda: self._give_back(key)

    def _give_back(self, key: str | None) -> None:
        self._total -= 1
        left = self._by_key[key] - 1
        if left:
            self._by_key[key] = left
        else:
            del self._by_key[key]

    @property
    def open(self) -> int:
        return self._total
