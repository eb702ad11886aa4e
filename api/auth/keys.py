"""API keys as text, and what a key may do: pure (no I/O; the randomness is passed in).

Consumes the text a client presents, and the server secret; produces the parsed key, its
HMAC-SHA256 (what the `api_keys` table stores, never the key itself) and the `Principal` a
request acts as. A key reads `oee_<key id: 16 hex>_<secret: url-safe base64>`: the id finds
the stored row without a scan, the secret proves possession. The id is not secret: it is the
order's `owner`, shown in logs and events; the secret part never is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

KEY_PREFIX: Final = "oee_"
_KEY: Final = re.compile(r"oee_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{32,128})")
# Anything that looks like a key, for redaction (logs): the id stays readable.
KEY_PATTERN: Final = re.compile(r"oee_([0-9a-f]{16})_[A-Za-z0-9_-]+")


class Scope(StrEnum):
    """What a key may do; each scope includes the ones before it."""

    READ = "read"  # its own orders and streams, quotes
    TRADE = "trade"  # + place and cancel orders
    ADMIN = "admin"  # + every order, raw topics, rebuilds, metrics details

    def includes(self, other: Scope) -> bool:
        return _RANK[self] >= _RANK[other]


_RANK: Final = {Scope.READ: 0, Scope.TRADE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as. `key_id` None: auth is off (the whole local engine, as admin)."""

    key_id: str | None
    scope: Scope

    def may(self, scope: Scope) -> bool:
        return self.scope.includes(scope)

    def sees(self, owner: str | None) -> bool:
        """An order is visible to its owner and to admins; an owner-less one (written before
        auth) to admins only."""
        return self.scope is Scope.ADMIN or (owner is not None and owner == self.key_id)

    @property
    def owner(self) -> str | None:
        """What an order placed by this principal records as its owner."""
        return self.key_id


ANONYMOUS_ADMIN: Final = Principal(None, Scope.ADMIN)  # AUTH_MODE=off


@dataclass(frozen=True, slots=True)
class PresentedKey:
    key_id: str
    secret: str


def parse_key(text: str) -> PresentedKey | None:
    """The key in `text`, or None when it is not shaped like one."""
    match = _KEY.fullmatch(text.strip())
    return None if match is None else PresentedKey(match["id"], match["secret"])


def key_text(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secret}"


def secret_hash(server_secret: bytes, key_id: str, secret: str) -> bytes:
    """HMAC-SHA256 of the key under the server secret: a stolen table alone proves nothing."""
    return hmac.new(server_secret, f"{key_id}.{secret}".encode(), hashlib.sha256).digest()


def matches(server_secret: bytes, presented: PresentedKey, stored_hash: bytes) -> bool:
    """Constant-time: the comparison takes as long whatever prefix matches."""
    computed = secret_hash(server_secret, presented.key_id, presented.secret)
    return hmac.compare_digest(computed, stored_hash)


def redact(text: str) -> str:
    """`text` with the secret part of every key in it replaced (the id stays)."""
    return KEY_PATTERN.sub(lambda m: f"oee_{m.group(1)}_[redacted]", text)
