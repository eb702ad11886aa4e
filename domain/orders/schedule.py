"""A parent order's schedule (twap, dca): how its amount is cut into slices and when each is
due. Pure: the start is the parent's acceptance time, passed in.

- twap: `amount_in` in `slices` slices; the first `amount_in % slices` carry one base unit
  more than `amount_in // slices` (every base unit is spent, no slice is empty: the rule book
  requires `amount_in >= slices`);
- dca: `amount_per_slice` per slice, the last slice the remainder; with `end_at`, the slices
  due at or after it are dropped from the schedule (so the parent may spend less);
- slice i is due at start + i * interval_s (slice 0 at once).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from domain.orders.terms import DcaTerms, ParentTerms, TwapTerms

MAX_SLICES: Final = 1_000  # a parent's history stays a few thousand events at most


def slice_amounts(terms: ParentTerms) -> tuple[int, ...]:
    """The amount of each slice of the whole schedule (before any `end_at`)."""
    if isinstance(terms, TwapTerms):
        base, extra = divmod(terms.amount_in, terms.slices)
        return tuple(base + (1 if index < extra else 0) for index in range(terms.slices))
    full, rest = divmod(terms.amount_in, terms.amount_per_slice)
    return (terms.amount_per_slice,) * full + ((rest,) if rest else ())


def slice_count(terms: ParentTerms) -> int:
    """How many slices the amounts make (`amount_in` / the slice size, rounded up for dca)."""
    if isinstance(terms, TwapTerms):
        return terms.slices
    return -(-terms.amount_in // terms.amount_per_slice)


def due_at(started_at: datetime, interval_s: int, index: int) -> datetime:
    return started_at + timedelta(seconds=interval_s * index)


def schedule(terms: ParentTerms, started_at: datetime) -> tuple[int, ...]:
    """The slices that will be due: the amounts, less those due at or after a dca `end_at`."""
    amounts = slice_amounts(terms)
    end_at = terms.end_at if isinstance(terms, DcaTerms) else None
    if end_at is None:
        return amounts
    return tuple(amount for index, amount in enumerate(amounts)
                 if due_at(started_at, terms.interval_s, index) < end_at)
