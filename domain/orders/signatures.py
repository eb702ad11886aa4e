"""Deterministic transaction signatures.

A real Solana transaction's signature is known as soon as it is signed, before it is
submitted: that is what lets a re-driven execution ask the chain "did this land?" before
submitting again. The simulated signature is 64 bytes derived from (order id, attempt),
base58-encoded like a real one, so re-deciding after a crash yields the same signature.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Final

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def transaction_signature(order_id: str, attempt: int) -> str:
    """The base58 signature of the transaction built for `attempt` of `order_id`."""
    first = sha256(f"oee-signature/{order_id}/{attempt}".encode()).digest()
    return b58encode(first + sha256(first).digest())


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana uses (leading zero bytes become '1')."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))
