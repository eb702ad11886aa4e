"""Order ids as clients write them in URLs, and the one answer for an id that names no order.

Consumes the text of an `{order_id}` path segment (or the `orderId` query parameter of the
older engines' WebSocket URL); produces the canonical id (a lowercase, hyphenated UUID; any
spelling `uuid.UUID` reads is accepted), or a 404 `not_found` for text that cannot be an
order id. Not a 400: the request is well-formed, there is simply no such order, which is what
the engines this one replaced answered and what their clients test for.
"""

from __future__ import annotations

from uuid import UUID

from api.errors import ApiError, FieldError
from api.fields import shown


def canonical_order_id(text: str) -> str | None:
    """`text` as a canonical order id, or None when it is not a UUID."""
    try:
        return str(UUID(text))
    except ValueError:
        return None


def order_id_or_404(text: str) -> str:
    """The canonical order id, or a 404 `not_found` naming `orderId`."""
    canonical = canonical_order_id(text)
    if canonical is None:
        raise ApiError(404, "not_found", f"no order {shown(text)}: order ids are UUIDs",
                       (FieldError("orderId", "unknown order"),))
    return canonical


def not_found(order_id: str) -> ApiError:
    """The 404 of an order the caller may not see: the same as for one nobody placed."""
    return ApiError(404, "not_found", f"no order {order_id} in the read model",
                    (FieldError("orderId", "unknown order"),))
