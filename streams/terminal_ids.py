"""The ids of the orders of one partition that ended: an exact set, 16 bytes per order, each with
its chain head (32 bytes: the hash of its last event, `schemas.chain`).

Consumes order ids (and heads) as the writer folds or decides terminal events; answers whether
an order ended, and hands its contents to a snapshot (`runs` and `heads`, `others` and
`other_heads`) and back. The head of an ended order never changes (nothing counts after an
order ended), and a chain checkpoint pins it all the same: a snapshot carries it, kept here so
that taking a snapshot copies two blobs per run instead of looking up every ended order. Why it exists: the
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
import itertools
import operator
import sys
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from operator import itemgetter
from typing import Final, overload

from schemas.chain import range_bounds, range_of

KEY_BYTES: Final = 16
HEAD_BYTES: Final = 32
NO_HEAD: Final = bytes(HEAD_BYTES)  # an ended order whose events predate the chain
SEAL_AT: Final = 4096  # ids added one by one before they are sorted into a run


class Run(Sequence[bytes]):
    """A sorted run of 16-byte keys stored back to back in one bytes object."""

    __slots__ = ("blob", "_starts")

    def __init__(self, blob: bytes) -> None:
        if len(blob) % KEY_BYTES:
            raise ValueError(f"a run of {KEY_BYTES}-byte keys cannot be {len(blob)} bytes long")
        self.blob = blob
        self._starts: array[int] | None = None

    def starts(self, ranges: int) -> array[int]:
        """Where each of `ranges` id ranges (`schemas.chain.range_bounds`: a range is a
        prefix of the key's leading bits) starts in the run, and the run's length last.
        Counted in one pass when first asked (a run never changes)."""
        if self._starts is None or len(self._starts) != ranges + 1:
            shift = 16 - (len(range_bounds(ranges)[0]) * 4 if ranges > 1 else 0)
            if shift < 0:
                raise ValueError(f"{ranges} ranges: a range's prefix is longer than 2 bytes")
            counts = [0] * (ranges + 1)
            blob = self.blob
            for at in range(0, len(blob), KEY_BYTES):
                counts[((blob[at] << 8 | blob[at + 1]) >> shift) + 1] += 1
            self._starts = array("L", itertools.accumulate(counts))
        return self._starts

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
        """Strictly ascending? Checked on the keys' first 8 bytes as integers, in C (a
        takeover checks every run of a snapshot: 1.4 M keys at 10 M events); a tie there
        (rare: random ids) is settled on the whole keys."""
        words = array("Q", self.blob)
        if sys.byteorder == "little":
            words.byteswap()  # big-endian: the integers order as the bytes do
        high = words[0::2]
        if all(map(operator.lt, high, itertools.islice(high, 1, None))):
            return True
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
    def __init__(self, runs: Iterable[bytes] = (), others: Iterable[str] = (),
                 heads: Sequence[bytes] = (), other_heads: Sequence[bytes] = ()) -> None:
        """`runs` and `others` as `runs()` and `others()` gave them (a snapshot's), with
        their `heads()` and `other_heads()` (none given: no ended order has a head)."""
        blobs = list(runs)
        if heads and len(heads) != len(blobs):
            raise ValueError(f"{len(heads)} runs of heads for {len(blobs)} runs of ids")
        given = list(heads) or [bytes(HEAD_BYTES * (len(blob) // KEY_BYTES)) for blob in blobs]
        self._runs = [Run(blob) for blob in blobs if blob]
        self._heads = [run_heads for blob, run_heads in zip(blobs, given) if blob]
        for run, run_heads in zip(self._runs, self._heads, strict=True):
            if not run.is_sorted():
                raise ValueError("a run of terminal ids is not sorted")
            if len(run_heads) != HEAD_BYTES * len(run):
                raise ValueError(f"{len(run_heads)} bytes of heads for a run of {len(run)} ids")
        self._recent: dict[bytes, bytes] = {}  # key -> head, not sorted into a run yet
        other_ids = list(others)
        if other_heads and len(other_heads) != len(other_ids):
            raise ValueError(f"{len(other_heads)} heads for {len(other_ids)} other ids")
        self._others = dict(zip(other_ids, other_heads or [b""] * len(other_ids), strict=True))

    def add(self, order_id: str, head: bytes | None = None) -> None:
        """The order ended, its last event's hash `head` (None: it has none)."""
        if head is not None and len(head) != HEAD_BYTES:
            raise ValueError(f"a head has {HEAD_BYTES} bytes, not {len(head)}")
        key = uuid_key(order_id)
        if key is None:
            self._others.setdefault(order_id, head or b"")
        elif key not in self._recent and not self._in_runs(key):
            self._recent[key] = head or NO_HEAD
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

    def heads(self) -> list[bytes]:
        """The heads of `runs()`' ids, run by run, 32 bytes per id (`NO_HEAD`: none)."""
        self._seal()
        return list(self._heads)

    def others(self) -> list[str]:
        return sorted(self._others)

    def other_heads(self) -> list[bytes]:
        """The head of each of `others()` (empty: none)."""
        return [self._others[order_id] for order_id in sorted(self._others)]

    def with_heads(self) -> Iterator[tuple[str, bytes]]:
        """Every ended order that has a head, with it."""
        self._seal()
        for run, run_heads in zip(self._runs, self._heads, strict=True):
            for at, key in enumerate(run):
                head = run_heads[at * HEAD_BYTES:(at + 1) * HEAD_BYTES]
                if head != NO_HEAD:
                    yield str(uuid.UUID(bytes=key)), head
        for order_id, head in self._others.items():
            if head:
                yield order_id, head

    def range_heads(self, index: int, ranges: int) -> list[tuple[str, bytes]]:
        """The ended orders with a head in id range `index` of `ranges`
        (`schemas.chain.range_bounds`), with it, in id order (a checkpoint's leaves there; each
        run is sorted by its 16-byte keys, the order of their canonical strings too): a slice
        of each run (`Run.starts`)."""
        self._seal()
        pieces = []
        for run, heads in zip(self._runs, self._heads, strict=True):
            starts = run.starts(ranges)
            start, stop = starts[index], starts[index + 1]
            if start < stop:
                pieces.append(_pairs(Run(run.blob[start * KEY_BYTES:stop * KEY_BYTES]),
                                     heads[start * HEAD_BYTES:stop * HEAD_BYTES]))
        uuids = ((str(uuid.UUID(bytes=key)), head) for key, head in heapq.merge(*pieces)
                 if head != NO_HEAD)
        others = ((order_id, head) for order_id, head in sorted(self._others.items())
                  if head and range_of(order_id, ranges) == index)
        return list(heapq.merge(uuids, others, key=itemgetter(0)))

    def copy(self) -> TerminalIds:
        """An independent set with the same contents (the runs' blobs are shared: immutable)."""
        twin = TerminalIds()
        twin._runs, twin._heads = list(self._runs), list(self._heads)
        twin._recent, twin._others = dict(self._recent), dict(self._others)
        return twin

    def nbytes(self) -> int:
        """Roughly what the set holds in memory (the runs' bytes and their heads; recent and
        other ids at their Python size)."""
        return (sum(len(run.blob) + len(heads) for run, heads in zip(self._runs, self._heads))
                + 160 * len(self._recent) + sum(100 + len(o) for o in self._others))

    def _in_runs(self, key: bytes) -> bool:
        return any(run.has(key) for run in self._runs)

    def _seal(self) -> None:
        if not self._recent:
            return
        pairs = sorted(self._recent.items())
        run, heads = Run(b"".join(k for k, _ in pairs)), b"".join(h for _, h in pairs)
        self._recent = {}
        while self._runs and len(self._runs[-1]) <= len(run):
            merged = list(heapq.merge(_pairs(self._runs.pop(), self._heads.pop()),
                                      _pairs(run, heads)))
            run, heads = Run(b"".join(k for k, _ in merged)), b"".join(h for _, h in merged)
        self._runs.append(run)
        self._heads.append(heads)


def _pairs(run: Run, heads: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, head) of each id of the run, in its order."""
    return ((key, heads[at * HEAD_BYTES:(at + 1) * HEAD_BYTES]) for at, key in enumerate(run))

