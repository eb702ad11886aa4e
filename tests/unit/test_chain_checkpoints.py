"""The writer's chain checkpoints (streams.checkpoints): only confirmed events count, every N
events or T seconds per partition, none after a refused delivery until folded again; and
their records (schemas.checkpoints) read back."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from schemas.chain import RANGES, RangedHeads, merkle_root, ranged_merkle_root
from schemas.checkpoints import (
    BadCheckpoint, Checkpoint, CheckpointReader, checkpoint_value, load_checkpoint_history,
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
    assert checkpoint == Checkpoint(
        "orders.events", 3, 11, 4, 2,
        ranged_merkle_root({"old": digest("old"), "a": digest("a2")}), T0, RANGES)


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


def test_a_checkpoint_record_reads_back_as_written_and_a_v1_record_as_one_range() -> None:
    history = load_checkpoint_history()
    reader = CheckpointReader({1: 41, 2: 42}, history)
    checkpoint = Checkpoint("t.orders.events", 5, 1234, 77, 3, digest("root"), T0, RANGES)
    value = checkpoint_value(checkpoint, 42, dict(history.versions[2]))
    assert value[:5] == b"\x00" + (42).to_bytes(4, "big")
    assert reader.read(value) == checkpoint

    v1 = dict(history.versions[1])
    old = checkpoint_value(checkpoint, 41, v1)  # a v1 writer has no `ranges` to write
    assert reader.read(old) == Checkpoint("t.orders.events", 5, 1234, 77, 3, digest("root"),
                                          T0, 1)
    try:
        reader.read(b"\x00" + (43).to_bytes(4, "big") + value[5:])
    except BadCheckpoint as error:
        assert "schema id 43" in str(error)
    else:
        raise AssertionError("an unknown schema id was read")


def test_the_replay_compares_each_checkpoint_once_its_offset_is_read() -> None:
    from projections.replay import CheckpointCheck

    heads = {"a": digest("a2"), "b": digest("b1")}
    ranged = RangedHeads()
    for order_id, head in heads.items():
        ranged.set(order_id, head)
    good = Checkpoint("orders.events", 0, 5, 3, 2, ranged_merkle_root(heads), T0, RANGES)
    forged = Checkpoint("orders.events", 0, 7, 3, 2, digest("other"), T0, RANGES)
    deposed = Checkpoint("orders.events", 0, 8, 1, 2, digest("zombie"), T0, RANGES)
    older = Checkpoint("orders.events", 0, 8, 3, 2, merkle_root(heads), T0, 1)  # v1: one tree
    check = CheckpointCheck(pending={0: [(0, good), (1, forged), (2, deposed), (3, older)]})

    assert check.due(0, 4) == []
    for at, checkpoint in check.due(0, 8):
        check.compare(at, checkpoint, ranged, epoch=3, checkpoints_topic="orders.checkpoints")

    assert (check.checked, check.stale, check.pending[0]) == (3, 1, [])
    (mismatch,) = check.mismatched
    assert (mismatch["offset"], mismatch["coveredOffset"]) == (1, 7)
    assert mismatch["recomputed"] == ranged_merkle_root(heads).hex()


async def test_a_checkpoint_recomputes_only_the_id_ranges_that_changed() -> None:
    """The root covers every order of the partition, but a checkpoint costs the orders whose
    heads changed since the last one (and their ranges' neighbours), not the history."""
    written: list[Checkpoint] = []
    checkpoints = Checkpoints("orders.events", written.append, every_events=1, every_s=60,
                              wall=lambda: T0)
    ended = TerminalIds()
    history = {str(uuid.UUID(int=n * 2**100)): digest(f"ended {n}") for n in range(1, 3000)}
    for order_id, head in history.items():
        ended.add(order_id, head)
    asked: list[int] = []
    checkpoints.seed(0, {}, covered=10, epoch=1, ended=ended)
    kept = checkpoints._partitions[0].ended  # the writer's copy
    range_heads = kept.range_heads

    def counting(index: int, ranges: int) -> list[tuple[str, bytes]]:
        asked.append(index)
        return range_heads(index, ranges)

    kept.range_heads = counting  # type: ignore[method-assign]
    first, second = delivery(), delivery()
    new = str(uuid.UUID(int=5))
    checkpoints.track(0, new, digest("new 1"), first)
    confirm(first, 11)
    await settle()
    assert len(asked) == RANGES  # the first after a fold: every range once
    asked.clear()
    checkpoints.track(0, new, digest("new 2"), second, ended=True)
    confirm(second, 12)
    await settle()

    assert asked == [0]  # the one range the order is in
    every = {**history, new: digest("new 2")}
    assert [(c.orders, c.root) for c in written] == [
        (len(every), ranged_merkle_root({**history, new: digest("new 1")})),
        (len(every), ranged_merkle_root(every))]


async def test_after_a_fold_the_ranges_are_recomputed_a_step_at_a_time() -> None:
    """A fold marks every range: the first checkpoint after it waits until they are all
    recomputed, `refresh_budget` per due check or tick, instead of stalling the event loop."""
    written: list[Checkpoint] = []
    clock = Clock()
    checkpoints = Checkpoints("orders.events", written.append, every_events=1, every_s=60,
                              clock=clock, wall=lambda: T0, refresh_budget=1000)
    checkpoints.seed(0, {"a": digest("a1")}, covered=0, epoch=1)
    checkpoints.tick()  # a step, no checkpoint due: 1,000 of 4,096 ranges recomputed
    one = delivery()
    checkpoints.track(0, "b", digest("b1"), one)
    confirm(one, 1)
    await settle()
    assert written == []  # due, and a step closer
    for _ in range(2):
        checkpoints.tick()  # steps only: time is not due (4,000 done)
    assert written == []
    clock.now = 60
    checkpoints.tick()
    assert [(c.covered_offset, c.orders, c.root) for c in written] == [
        (1, 2, ranged_merkle_root({"a": digest("a1"), "b": digest("b1")}))]


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
    assert (checkpoint.orders, checkpoint.root) == (4, ranged_merkle_root(every))
    assert a not in ended and len(ended) == 1  # the seed's set is the writer's, untouched
