"""The writer's chain checkpoints (streams.checkpoints): only confirmed events count, every N
events or T seconds per partition, none after a refused delivery until folded again; and
their records (schemas.checkpoints) read back."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from schemas.chain import merkle_root
from schemas.checkpoints import (
    Checkpoint, checkpoint_value, load_checkpoint_schema, read_checkpoint,
)
from streams.checkpoints import Checkpoints
from streams.ports import Delivery
from streams.terminal_ids import TerminalIds

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def delivery() -> Delivery:
    return asyncio.get_running_loop().create_future()


def confirm(future: Delivery, offset: int) -> None:
    future.set_result(SimpleNamespace(offset=offset))


async def settle() -> None:
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop


async def test_every_n_confirmed_events_a_checkpoint_pins_the_root_of_all_heads() -> None:
    written: list[Checkpoint] = []
    clock = Clock()
    checkpoints = Checkpoints("orders.events", written.append, every_events=2, every_s=60,
                              clock=clock, wall=lambda: T0)
    checkpoints.seed(3, {"old": digest("old")}, covered=9, epoch=4)
    first, second = delivery(), delivery()
    checkpoints.track(3, "a", digest("a1"), first)
    checkpoints.track(3, "a", digest("a2"), second)
    confirm(first, 10)
    await settle()
    assert written == []  # one event is not enough, and an unconfirmed one never counts
    confirm(second, 11)
    await settle()

    (checkpoint,) = written
    assert checkpoint == Checkpoint("orders.events", 3, 11, 4, 2,
                                    merkle_root({"old": digest("old"), "a": digest("a2")}), T0)


async def test_after_a_refused_delivery_nothing_is_pinned_until_the_partition_is_folded(
) -> None:
    written: list[Checkpoint] = []
    clock = Clock()
    checkpoints = Checkpoints("orders.events", written.append, every_events=1, every_s=5,
                              clock=clock)
    checkpoints.seed(0, {}, covered=-1, epoch=0)
    refused, later = delivery(), delivery()
    checkpoints.track(0, "a", digest("a1"), refused)
    checkpoints.track(0, "b", digest("b1"), later)
    refused.set_exception(ConnectionError("refused"))
    confirm(later, 2)
    await settle()
    clock.now = 10
    checkpoints.tick()
    assert written == []

    checkpoints.seed(0, {"b": digest("b1")}, covered=2, epoch=0)  # folded again
    stale = delivery()
    checkpoints.track(0, "c", digest("c1"), stale)
    checkpoints.seed(0, {"b": digest("b1")}, covered=2, epoch=0)  # ... and once more
    confirm(stale, 3)  # confirmed for the previous fold: the new one has it from the store
    await settle()
    assert written == []


async def test_a_partition_with_new_events_is_pinned_every_t_seconds() -> None:
    written: list[Checkpoint] = []
    clock = Clock()
    checkpoints = Checkpoints("orders.events", written.append, every_events=100, every_s=5,
                              clock=clock)
    checkpoints.seed(1, {}, covered=-1, epoch=0)
    checkpoints.tick()
    one = delivery()
    checkpoints.track(1, "a", digest("a1"), one)
    confirm(one, 0)
    await settle()
    clock.now = 4.9
    checkpoints.tick()
    assert written == []
    clock.now = 5.0
    checkpoints.tick()
    checkpoints.tick()  # nothing new since: no second checkpoint
    assert [(c.partition, c.covered_offset, c.orders) for c in written] == [(1, 0, 1)]


def test_a_checkpoint_record_reads_back_as_written() -> None:
    schema = load_checkpoint_schema()
    checkpoint = Checkpoint("t.orders.events", 5, 1234, 77, 3, digest("root"), T0)
    value = checkpoint_value(checkpoint, 42, schema)
    assert value[:5] == b"\x00" + (42).to_bytes(4, "big")
    assert read_checkpoint(value, schema) == checkpoint


def test_the_replay_compares_each_checkpoint_once_its_offset_is_read() -> None:
    from projections.replay import CheckpointCheck

    heads = {"a": digest("a2"), "b": digest("b1")}
    good = Checkpoint("orders.events", 0, 5, 3, 2, merkle_root(heads), T0)
    forged = Checkpoint("orders.events", 0, 7, 3, 2, digest("other"), T0)
    deposed = Checkpoint("orders.events", 0, 8, 1, 2, digest("zombie"), T0)
    check = CheckpointCheck(pending={0: [(0, good), (1, forged), (2, deposed)]})

    assert check.due(0, 4) == []
    for at, checkpoint in check.due(0, 8):
        check.compare(at, checkpoint, heads, epoch=3, checkpoints_topic="orders.checkpoints")

    assert (check.checked, check.stale, check.pending[0]) == (2, 1, [])
    (mismatch,) = check.mismatched
    assert (mismatch["offset"], mismatch["coveredOffset"]) == (1, 7)
    assert mismatch["recomputed"] == merkle_root(heads).hex()


async def test_an_ended_order_s_head_leaves_the_dict_and_still_counts_in_the_root() -> None:
    written: list[Checkpoint] = []
    checkpoints = Checkpoints("orders.events", written.append, every_events=3, every_s=60,
                              wall=lambda: T0)
    ended = TerminalIds()
    ended.add(str(uuid.UUID(int=7)), digest("old ended"))
    live = {str(uuid.UUID(int=9)): digest("live")}
    checkpoints.seed(0, live, covered=4, epoch=1, ended=ended)
    a, b = str(uuid.UUID(int=3)), "not-a-uuid"
    deliveries = [delivery() for _ in range(3)]
    checkpoints.track(0, a, digest("a1"), deliveries[0])
    checkpoints.track(0, a, digest("a2"), deliveries[1], ended=True)
    checkpoints.track(0, b, digest("b1"), deliveries[2], ended=True)
    for offset, future in enumerate(deliveries, start=5):
        confirm(future, offset)
    await settle()

    (checkpoint,) = written
    every = {str(uuid.UUID(int=7)): digest("old ended"), **live, a: digest("a2"),
             b: digest("b1")}
    assert (checkpoint.orders, checkpoint.root) == (4, merkle_root(every))
    assert a not in ended and len(ended) == 1  # the seed's set is the writer's, untouched
