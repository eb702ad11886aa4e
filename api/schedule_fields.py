"""The schedule terms of a parent order request (twap, dca), parsed.

Consumes the text a client sent for `slices`, `intervalS`, `amountPerSlice`, `endAt`,
`minSlicePrice` and `maxSlicePrice`, and the resolved tokenIn (an amount per slice is in its
human units, read exactly as `amountIn` is); produces their values keyed by the terms' field
names and the names of those that could not be read, each with a 400 in the `Collector`.
Which term goes with which order type, ranges and how slices fit the amount are the rule
book's (`domain.orders.rules`); the edge's own minimum interval (`PARENT_MIN_INTERVAL_S`)
is checked by `interval_below_minimum`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from api.conditions import _decimal, _expires_at
from api.errors import FieldError, invalid
from api.fields import Collector, amount_units, shown
from domain.orders.rules import interval_problem
from domain.tokens import Token

_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
# The client's name of each schedule term -> the terms' field name.
_FIELD: Final = {"slices": "slices", "intervalS": "interval_s",
                 "amountPerSlice": "amount_per_slice", "endAt": "end_at",
                 "minSlicePrice": "min_slice_price", "maxSlicePrice": "max_slice_price"}


@dataclass(frozen=True, slots=True)
class ScheduleFields:
    """The schedule fields as the client sent them (None: not given)."""

    slices: str | None = None
    interval_s: str | None = None
    amount_per_slice: str | None = None
    end_at: str | None = None
    min_slice_price: str | None = None
    max_slice_price: str | None = None

    def given(self) -> dict[str, str]:
        """API name -> text of the fields the client set."""
        texts = {"slices": self.slices, "intervalS": self.interval_s,
                 "amountPerSlice": self.amount_per_slice, "endAt": self.end_at,
                 "minSlicePrice": self.min_slice_price, "maxSlicePrice": self.max_slice_price}
        return {name: text for name, text in texts.items() if text is not None}


def parse_schedule(fields: ScheduleFields, token_in: Token | None,
                   found: Collector) -> tuple[dict[str, object], frozenset[str]]:
    """(the values of the schedule terms given, the names of those given but unreadable),
    both keyed by the terms' field names. Without a known tokenIn an amount per slice cannot
    be read (the token's error is reported already): it counts as unreadable."""
    readers = {
        "slices": lambda text: _whole("slices", text, "a whole number of slices"),
        "intervalS": lambda text: _whole("intervalS", text, "a whole number of seconds"),
        "amountPerSlice": lambda text: (None if token_in is None
                                        else amount_units("amountPerSlice", text, token_in)),
        "endAt": lambda text: _end_at(text),
        "minSlicePrice": lambda text: _decimal("minSlicePrice", text, "a price"),
        "maxSlicePrice": lambda text: _decimal("maxSlicePrice", text, "a price"),
    }
    values: dict[str, object] = {}
    unreadable: set[str] = set()
    for name, text in fields.given().items():
        value = found.check(lambda read=readers[name], text=text: read(text))  # type: ignore[misc]
        if value is None:
            unreadable.add(_FIELD[name])
        else:
            values[_FIELD[name]] = value
    return values, frozenset(unreadable)


def interval_below_minimum(values: dict[str, object], minimum: int) -> FieldError | None:
    """The edge's own floor under intervalS (the rule book's is 1 s): PARENT_MIN_INTERVAL_S."""
    interval = values.get("interval_s")
    if not isinstance(interval, int) or interval < 1:
        return None  # absent, or the rule book's error already
    problem = interval_problem(interval, minimum)
    return None if problem is None else FieldError("intervalS", problem)


def _whole(field: str, text: str, what: str) -> int:
    if not _WHOLE.fullmatch(text):
        raise invalid(field, f"{shown(text)} is not {what}")
    return int(text)


def _end_at(text: str) -> object:
    try:
        return _expires_at(text)
    except Exception:  # noqa: BLE001 - the same reading, named after this field
        raise invalid("endAt", f"{shown(text)} is not an ISO 8601 time, e.g. "
                      '"2030-01-01T00:00:00Z"') from None
