"""Idempotency keys: stable order ids, and a bounded memory of what each key was used for."""

from __future__ import annotations

import uuid

import pytest

from api.idempotency import RecentKeys, Replay, execute_command_id, order_id_for


def test_a_key_always_names_the_same_order_and_different_keys_different_orders() -> None:
    assert order_id_for("bot-1") == order_id_for("bot-1")
    assert order_id_for("bot-1") != order_id_for("bot-2")
    assert uuid.UUID(order_id_for("bot-1")).version == 5


def test_the_order_id_of_a_key_never_changes() -> None:
    # Pinned: a change here would give every existing key a new order (and a second swap).
    namespace = uuid.UUID("3b0d1d6e-8f0a-5c51-9a43-2f8d6b1e7c20")

    assert order_id_for("bot-1") == str(uuid.uuid5(namespace, "bot-1"))


def test_a_retried_execute_carries_the_same_command_id() -> None:
    order_id = order_id_for("bot-1")

    assert execute_command_id(order_id) == execute_command_id(order_id) != order_id


def test_a_key_is_new_until_remembered_then_same_or_conflicting() -> None:
    keys = RecentKeys()

    assert keys.check("k", ("a",)) is Replay.NEW
    keys.remember("k", ("a",))
    assert keys.check("k", ("a",)) is Replay.SAME
    assert keys.check("k", ("b",)) is Replay.CONFLICT


def test_the_memory_is_bounded_and_forgets_the_least_recently_used_key_first() -> None:
    keys = RecentKeys(capacity=2)
    keys.remember("old", 1)
    keys.remember("used", 2)
    keys.check("used", 2)  # touched: "old" is now the least recently used
    keys.remember("old", 1)  # re-remembering refreshes too
    keys.remember("new", 3)

    assert len(keys) == 2
    assert keys.check("used", 2) is Replay.NEW
    assert keys.check("old", 1) is Replay.SAME


def test_a_memory_without_room_is_a_bug() -> None:
    with pytest.raises(ValueError):
        RecentKeys(capacity=0)
