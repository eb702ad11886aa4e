"""The checkpoints' root cut into id ranges (schemas.chain, chain_checkpoint v2): its
definition, the ranges kept up to date one change at a time, and the ended orders' range
slices (streams.terminal_ids) that feed them."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.chain import (
    RANGES, RangedHeads, merkle_root, merkle_root_of_sorted, range_bounds, range_of,
    ranged_merkle_root, root_of_ranges,
)
from streams.terminal_ids import TerminalIds


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_one_range_is_the_v1_root_and_more_ranges_are_a_tree_over_the_ranges_roots() -> None:
    heads = {"0a": digest("x"), "1b": digest("y"), "f0": digest("z"), "zz": digest("w")}
    assert ranged_merkle_root(heads, 1) == merkle_root(heads)
    pieces = [[("0a", heads["0a"])], [("1b", heads["1b"])]] + [[]] * 13 + [
        [("f0", heads["f0"]), ("zz", heads["zz"])]]
    assert ranged_merkle_root(heads, 16) == root_of_ranges(
        [merkle_root_of_sorted(piece) for piece in pieces])
    assert ranged_merkle_root(heads, 16) != merkle_root(heads)


def test_the_ranges_cut_the_sorted_ids_into_consecutive_pieces() -> None:
    assert range_bounds(16) == tuple("123456789abcdef")
    assert len(range_bounds(RANGES)) == RANGES - 1
    ids = sorted([str(uuid.UUID(int=n * 7919 ** 9 % 2 ** 128)) for n in range(2000)]
                 + ["", "-x", "0", "000", "fff", "fffff", "g", "not-a-uuid", "ORD-1"])
    found = [range_of(order_id) for order_id in ids]
    assert found == sorted(found) and found[0] == 0 and found[-1] == RANGES - 1
    assert range_of("abc12345-0000-0000-0000-000000000000") == 0xABC
    with pytest.raises(ValueError, match="power of 16"):
        range_bounds(100)


ids = st.one_of(st.uuids().map(str), st.text(alphabet="0123456789abcdef-xz", max_size=6))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(ids, st.booleans(), st.binary(min_size=32, max_size=32)),
                      max_size=80),
       checks=st.sets(st.integers(0, 79), max_size=6))
def test_kept_ranges_give_the_root_of_all_heads_after_any_changes(
        steps: list[tuple[str, bool, bytes]], checks: set[int]) -> None:
    """Set and drop heads in any order, taking the root now and then: always the root
    recomputed from scratch."""
    kept, heads = RangedHeads(), {}
    for at, (order_id, drop, head) in enumerate(steps):
        if drop:
            kept.drop(order_id)
            heads.pop(order_id, None)
        else:
            kept.set(order_id, head)
            heads[order_id] = head
        if at in checks:
            assert kept.root() == (ranged_merkle_root(heads), len(heads))
    assert kept.root() == (ranged_merkle_root(heads), len(heads))
    assert kept.root(1) == (merkle_root(heads), len(heads))


@settings(max_examples=40, deadline=None)
@given(ended=st.dictionaries(ids, st.binary(min_size=32, max_size=32), max_size=300),
       ranges=st.sampled_from([1, 16, 256, RANGES]))
def test_the_ended_orders_of_a_range_are_a_slice_of_every_run(
        ended: dict[str, bytes], ranges: int) -> None:
    terminal = TerminalIds()
    for order_id, head in ended.items():
        terminal.add(order_id, head)
    every = sorted(terminal.with_heads())
    for index in range(ranges):
        assert terminal.range_heads(index, ranges) == [
            (order_id, head) for order_id, head in every if range_of(order_id, ranges) == index]


def test_ranges_merge_the_writer_s_ended_orders_with_those_in_flight() -> None:
    terminal = TerminalIds()
    ended = {str(uuid.UUID(int=n << 100)): digest(f"e{n}") for n in range(1, 9000, 2)}
    for order_id, head in ended.items():
        terminal.add(order_id, head)  # more than one run: sealed every 4,096
    kept = RangedHeads(more=lambda index: terminal.range_heads(index, RANGES))
    live = {str(uuid.UUID(int=n << 100)): digest(f"l{n}") for n in range(2, 9000, 22)}
    for order_id, head in live.items():
        kept.set(order_id, head)
    assert kept.root() == (ranged_merkle_root({**ended, **live}), len(ended) + len(live))
