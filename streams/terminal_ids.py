"""The ids of the orders of one partition that ended: an exact set, 16 bytes per order.

Consumes order ids as the writer folds or decides terminal events; answers whether an order
ended, and hands its contents to a snapshot (`runs`, `others`) and back. Why it exists: the
writer keeps the full state of orders in flight only. An ended order decides nothing ever
again (`decide` returns no event for a terminal state), but a late duplicate `ExecuteOrder`
for it must still decide nothing, and without a trace of the order it would be accepted a
second time. So the trace is kept, as small as an exact answer allows: a canonical UUID id is
16 bytes in sorted runs searched by bisection; any other id (tests, tools) is kept as is. A
probabilistic filter would answer "ended" for some new orders, which would then be dropped.

Runs merge like a binary counter (a run is merged with the one before it while that one is no
bigger), so each id is copied O(log n) times and a lookup searches O(log n) runs. No I/O.
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from typing import Final, overload

KEY_BYTES: Final = 16
SEAL_AT: Final = 4096  # ids added one by one before they are sorted into a run


class Run(Sequence[bytes]):
    """A sorted run of 16-byte keys stored back to back in one bytes object."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        if len(blob) % KEY_BYTES:
            raise ValueError(f"a run of {KEY_BYTES}-byte keys cannot be {len(blob)} bytes long")
        self.blob = blob

    def __len__(self) -> int:
        return len(self.blob) // KEY_BYTES

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.blob[index * KEY_BYTES:(index + 1) * KEY_BYTES]

    def __iter__(self) -> Iterator[bytes]:
        blob = self.blob
        return (blob[i:i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES))

    def has(self, key: bytes) -> bool:
        at = bisect.bisect_left(self, key)
        return at < len(self) and self[at] == key

    def is_sorted(self) -> bool:
        return all(a < b for a, b in pairwise(self))


def uuid_key(order_id: str) -> bytes | None:
    """The 16 bytes of a canonical (lower-case, hyphenated) UUID; None for any other id."""
    if len(order_id) != 36:
        return None
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        return None
    return parsed.bytes if str(parsed) == order_id else None


class TerminalIds:
    def __init__(self, runs: Iterable[bytes] = (), others: Iterable[str] = ()) -> None:
        """`runs` and `others` as `runs()` and `others()` gave them (a snapshot's)."""
        self._runs = [Run(blob) for blob in runs if blob]
        for run in self._runs:
            if not run.is_sorted():
                raise ValueError("a run of terminal ids is not sorted")
        self._recent: set[bytes] = set()
        self._others = set(others)

    def add(self, order_id: str) -> None:
        key = uuid_key(order_id)
        if key is None:
            self._others.add(order_id)
        elif key not in self._recent and not self._in_runs(key):
            self._recent.add(key)
            if len(self._recent) >= SEAL_AT:
                self._seal()

    def __contains__(self, order_id: object) -> bool:
        if not isinstance(order_id, str):
            return False
        key = uuid_key(order_id)
        if key is None:
            return order_id in self._others
        return key in self._recent or self._in_runs(key)

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs) + len(self._recent) + len(self._others)

    def runs(self) -> list[bytes]:
        """The UUID ids as sorted runs (what a snapshot stores)."""
        self._seal()
        return [run.blob for run in self._runs]

    def others(self) -> list[str]:
        return sorted(self._others)

    def nbytes(self) -> int:
        """Roughly what the set holds in memory (the runs' bytes; recent and other ids at
        their Python size)."""
        return (sum(len(run.blob) for run in self._runs) + 80 * len(self._recent)
                + sum(60 + len(o) for o in self._others))

    def _in_runs(self, key: bytes) -> bool:
        return any(run.has(key) for run in self._runs)

    def _seal(self) -> None:
        if not self._recent:
            return
        run = Run(b"".join(sorted(self._recent)))
        self._recent = set()
        while self._runs and len(self._runs[-1]) <= len(run):
            run = Run(b"".join(heapq.merge(self._runs.pop(), run)))
        self._runs.append(run)
