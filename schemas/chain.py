"""The hash chain of the event store (order_event v5): the math, and the check of one log.

Consumes an order's events as the codec reads them (`ChainLink`: the stored `prevHash` and
`hash`, and the event's canonical bytes recomputed from the record); produces hashes, Merkle
roots, and `BrokenLink`s. Pure: no I/O, no clock. The writer (`streams.outbox`) chains what it
appends with `link_hash`; `oee replay --verify`, the API's `?verify=true` and the tests check
with `ChainCheck`; the checkpoints (`schemas.checkpoints`) pin `ranged_merkle_root`s of the
heads (v1 checkpoints: `merkle_root`, the same with one range).

Definitions (what an auditor with a standard Avro library recomputes):
- **canonical bytes** of an event: the Avro binary encoding of its `OrderEvent` record under
  the schema version it was written with (the id/version in its header), with `prevHash` and
  `hash` both null, and without any framing (neither the Confluent 0x00 + 4-byte id nor the
  older 0x0E + version). In v5 they are the last two fields, so the canonical bytes are the
  record's body with its final 66 bytes (0x02 + 32 bytes, twice) replaced by 0x00 0x00.
- `hash = SHA-256(prevHash || canonical bytes)`; `prevHash` is the previous event's `hash`,
  32 zero bytes (`GENESIS`) for the first event of the order's chain.
- An event without hashes (written before v5) is not chained: an order whose history starts
  before v5 starts its chain at its first v5 event (prevHash = GENESIS). After the chain has
  started, every event must carry its link.
- The fold and every check take the event store's records in offset order through the writer
  fence (`schemas.writer_fence`) and skip a re-decided duplicate of a seq already taken, as the
  writer's fold does: what they chain is exactly the history the writer folded.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Final

HASH_SIZE: Final = 32
GENESIS: Final = bytes(HASH_SIZE)
# The union branch tags of the two nullable hash fields in Avro's binary encoding.
_NULL: Final = b"\x00"
_PRESENT: Final = b"\x02"
_NULL_TAIL: Final = _NULL + _NULL
_LEAF: Final = b"\x00"  # Merkle domain separation: leaves and inner nodes never collide
_NODE: Final = b"\x01"
# The id ranges a checkpoint's root is cut into (chain_checkpoint v2, `ranged_merkle_root`):
# a new head changes its range's root and the small tree over the ranges' roots, not a tree
# over every order of the partition.
RANGES: Final = 4096


def link_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """The hash of an event: SHA-256 over the previous hash and its canonical bytes."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"a previous hash has {HASH_SIZE} bytes, not {len(prev_hash)}")
    return hashlib.sha256(prev_hash + canonical).digest()


def chained_body(unchained: bytes, prev_hash: bytes) -> tuple[bytes, bytes]:
    """The Avro body of a v5 event encoded with both hashes null (its canonical bytes) ->
    (the body with `prevHash` and `hash` filled in, the hash)."""
    if not unchained.endswith(_NULL_TAIL):
        raise ValueError("the body does not end with two null hash fields")
    digest = link_hash(prev_hash, unchained)
    return unchained[:-2] + _PRESENT + prev_hash + _PRESENT + digest, digest


def merkle_leaf(order_id: str, head: bytes) -> bytes:
    """SHA-256(0x00 || head || UTF-8 order id): one order's latest hash in a checkpoint."""
    return hashlib.sha256(_LEAF + head + order_id.encode()).digest()


def merkle_root(heads: Mapping[str, bytes]) -> bytes:
    """The root over every order's head: leaves sorted by order id, each level hashing pairs
    as SHA-256(0x01 || left || right), an odd last node carried up unchanged; the root of no
    order is SHA-256 of nothing."""
    return merkle_root_of_sorted(sorted(heads.items()))


def merkle_root_of_sorted(heads: Iterable[tuple[str, bytes]]) -> bytes:
    """`merkle_root` of (order id, head) pairs already sorted by order id, each id once."""
    return _merkle_up([merkle_leaf(order_id, head) for order_id, head in heads])


def _merkle_up(level: list[bytes]) -> bytes:
    """Pair the nodes of `level` up to one root (none: SHA-256 of nothing)."""
    if not level:
        return hashlib.sha256(b"").digest()
    while len(level) > 1:
        paired = [hashlib.sha256(_NODE + level[i] + level[i + 1]).digest()
                  for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def range_bounds(ranges: int) -> tuple[str, ...]:
    """Where ranges 1 … ranges-1 of order ids start: the hexadecimal prefixes of one width
    (ranges a power of 16: 4096 -> "001" … "fff"). An id belongs to the last range whose
    start sorts at or before it, so the ranges cut the sorted ids into consecutive pieces
    (an id sorting before "00…" is in range 0, one after "ff…" in the last)."""
    return _bounds(ranges)


@functools.cache
def _bounds(ranges: int) -> tuple[str, ...]:
    width = 0
    while 16 ** width < ranges:
        width += 1
    if ranges < 1 or 16 ** width != ranges:
        raise ValueError(f"a checkpoint is cut into a power of 16 ranges, not {ranges}")
    return tuple(format(start, f"0{width}x") for start in range(1, ranges))


def range_of(order_id: str, ranges: int = RANGES) -> int:
    """The range of `order_id` among `ranges` (`range_bounds`)."""
    return bisect.bisect_right(_bounds(ranges), order_id)


def root_of_ranges(range_roots: Sequence[bytes]) -> bytes:
    """A checkpoint's root from the `merkle_root_of_sorted` of each id range, in range order,
    paired up as the leaves are. With one range it is that range's root: `merkle_root`."""
    return _merkle_up(list(range_roots))


def ranged_merkle_root(heads: Mapping[str, bytes], ranges: int = RANGES) -> bytes:
    """The root over every order's head, the sorted leaves cut into `ranges` id ranges
    (1: `merkle_root`, the order_checkpoint v1 root)."""
    pieces: list[list[tuple[str, bytes]]] = [[] for _ in range(ranges)]
    for order_id, head in sorted(heads.items()):
        pieces[range_of(order_id, ranges)].append((order_id, head))
    return root_of_ranges([merkle_root_of_sorted(piece) for piece in pieces])


Leaves = Callable[[int], Sequence[tuple[str, bytes]]]  # a range's (order id, head), sorted


@dataclass(slots=True)
class RangeRoots:
    """`ranged_merkle_root` kept up to date: a changed head marks its range (`touch`), and
    `refresh` recomputes the marked ranges from their leaves, which the owner hands over
    (it keeps the heads and marks `marked`; this keeps one root and one count per range).
    Starts all marked."""

    ranges: int = RANGES
    roots: list[bytes] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        range_bounds(self.ranges)  # a valid number of ranges
        self.roots = [b""] * self.ranges
        self.counts = [0] * self.ranges
        self.marked = set(range(self.ranges))

    def refresh(self, leaves: Leaves, budget: int | None = None) -> bool:
        """Recompute marked ranges until `budget` (None: no end) is spent, a range costing
        one plus its leaves; True when none is left marked."""
        spent = 0
        for index in sorted(self.marked):
            if budget is not None and spent >= budget:
                break
            pairs = leaves(index)
            self.roots[index] = merkle_root_of_sorted(pairs)
            self.counts[index] = len(pairs)
            self.marked.discard(index)
            spent += 1 + len(pairs)
        return not self.marked

    def root(self) -> bytes:
        if self.marked:
            raise ValueError(f"{len(self.marked)} ranges changed since the last refresh")
        return root_of_ranges(self.roots)

    def orders(self) -> int:
        return sum(self.counts)


@dataclass(slots=True)
class RangedHeads:
    """Order heads kept by id range, with each range's root (`RangeRoots`): the root over all
    of them costs the ranges changed since the last one. `more`: further leaves of a range
    kept elsewhere (the writer's ended orders, `streams.terminal_ids`), merged in by id; an
    order moves there with a `drop` here, which marks its range."""

    more: Leaves | None = None
    roots: RangeRoots = field(default_factory=RangeRoots)
    by_range: dict[int, dict[str, bytes]] = field(default_factory=dict)

    def set(self, order_id: str, head: bytes) -> None:
        index = range_of(order_id, self.roots.ranges)
        self.by_range.setdefault(index, {})[order_id] = head
        self.roots.marked.add(index)

    def drop(self, order_id: str) -> None:
        index = range_of(order_id, self.roots.ranges)
        self.by_range.get(index, {}).pop(order_id, None)
        self.roots.marked.add(index)

    def leaves(self, index: int) -> Sequence[tuple[str, bytes]]:
        own = sorted(self.by_range.get(index, {}).items())
        more = self.more(index) if self.more is not None else ()
        if not more:
            return own
        return list(heapq.merge(own, more, key=itemgetter(0))) if own else more

    def refresh(self, budget: int | None = None) -> bool:
        """`RangeRoots.refresh` of the changed ranges; True when none is left."""
        return self.roots.refresh(self.leaves, budget)

    def root(self, ranges: int = RANGES) -> tuple[bytes, int]:
        """The root over every head (and `more`) cut into `ranges`, and how many leaves:
        the kept roots for `RANGES`, any other number recomputed over them all."""
        if ranges == self.roots.ranges:
            self.refresh()
            return self.roots.root(), self.roots.orders()
        every = {order_id: head for index in range(self.roots.ranges)
                 for order_id, head in self.leaves(index)}
        return ranged_merkle_root(every, ranges), len(every)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What a stored event says of its place in the chain, and its canonical bytes."""

    prev_hash: bytes | None
    hash: bytes | None
    canonical: bytes

    @property
    def chained(self) -> bool:
        return self.prev_hash is not None and self.hash is not None


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first event of an order whose link does not hold, and where it is stored."""

    order_id: str
    seq: int
    topic: str
    partition: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return (f"order {self.order_id} seq {self.seq} at {self.topic}[{self.partition}]"
                f"@{self.offset}: {self.reason}")

    def as_json(self) -> dict[str, object]:
        return {"orderId": self.order_id, "seq": self.seq, "topic": self.topic,
                "partition": self.partition, "offset": self.offset, "reason": self.reason}


@dataclass(slots=True)
class _Order:
    seq: int = 0
    head: bytes | None = None  # None: its chain has not started (no v5 event yet)


@dataclass(slots=True)
class ChainCheck:
    """Feed the events of a log (per partition, in offset order, past the writer fence);
    read `broken` (the first broken link of each order, in the order found) and `heads`."""

    orders: dict[str, _Order] = field(default_factory=dict)
    broken: list[BrokenLink] = field(default_factory=list)
    events: int = 0  # events checked (duplicates and events of broken orders not counted)
    unchained: int = 0  # events written before the chain (no hashes), accepted as such
    duplicates: int = 0  # re-decided copies of a seq already taken (skipped, as by the fold)
    _broken_orders: set[str] = field(default_factory=set)

    def head_of(self, order_id: str) -> bytes | None:
        """The order's latest hash (None: its chain has not started, or broke)."""
        order = self.orders.get(order_id)
        if order is None or order_id in self._broken_orders:
            return None
        return order.head

    @property
    def heads(self) -> dict[str, bytes]:
        """Every order's latest hash (orders whose chain started and holds)."""
        return {order_id: order.head for order_id, order in self.orders.items()
                if order.head is not None and order_id not in self._broken_orders}

    def add(self, order_id: str, seq: int, link: ChainLink | None, topic: str, partition: int,
            offset: int) -> BrokenLink | None:
        """Check one event (`link` None: a record of a version before v5); returns the
        broken link it reveals, if any (then its order is not checked further)."""
        if order_id in self._broken_orders:
            return None
        order = self.orders.setdefault(order_id, _Order())
        if seq <= order.seq:
            self.duplicates += 1
            return None
        reason = self._reason(order, seq, link)
        if reason is not None:
            found = BrokenLink(order_id, seq, topic, partition, offset, reason)
            self.broken.append(found)
            self._broken_orders.add(order_id)
            return found
        self.events += 1
        order.seq = seq
        if link is not None and link.chained:
            order.head = link.hash
        else:
            self.unchained += 1
        return None

    def unreadable(self, order_id: str, topic: str, partition: int, offset: int,
                   error: str) -> BrokenLink:
        """A record of the order that cannot be read breaks its chain where it stands."""
        seq = self.orders.get(order_id, _Order()).seq + 1
        found = BrokenLink(order_id, seq, topic, partition, offset, f"unreadable: {error}")
        if order_id not in self._broken_orders:
            self.broken.append(found)
            self._broken_orders.add(order_id)
        return found

    @staticmethod
    def _reason(order: _Order, seq: int, link: ChainLink | None) -> str | None:
        if seq != order.seq + 1:
            return f"seq {seq} follows {order.seq}: an event is missing"
        if link is None or not link.chained:
            return None if order.head is None else "no hash, but the order's chain had started"
        assert link.prev_hash is not None and link.hash is not None
        expected = order.head if order.head is not None else GENESIS
        if link.prev_hash != expected:
            return (f"prevHash {link.prev_hash.hex()} is not the previous event's hash "
                    f"{expected.hex()}")
        recomputed = link_hash(link.prev_hash, link.canonical)
        if recomputed != link.hash:
            return (f"hash {link.hash.hex()} is not SHA-256(prevHash || canonical bytes) = "
                    f"{recomputed.hex()}: the event was changed")
        return None
