"""The live edge's pure parts: the gapless merge, the bounded mailbox, the recent-events cache
and the parsing of stream parameters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.live.all_stream import Filters
from api.live.connection import BAD_REQUEST, StreamClosed
from api.live.mailbox import FeedStopped, Mailbox, SubscriberTooSlow
from api.live.messages import OrderMessage, encode
from api.live.recent import RecentEvents
from api.live.timeline import OrderTimeline
from api.live.topic_stream import StartAt
from bench.order_histories import HistoryMaker
from domain.orders import Event, OrderStatus, evolve, initial_state

HISTORIES = list(HistoryMaker(seed=5).orders(40))
T0 = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)


def messages_of(history: list[Event]) -> list[OrderMessage]:
    """The messages the read model would give for `history` (statuses folded by evolve)."""
    state, messages = initial_state(history[0].order_id), []
    for event in history:
        state = evolve(state, event)
        name = type(event).__name__
        text = encode(event.order_id, state.status, name, event.seq, event.occurred_at, {})
        messages.append(OrderMessage(event.order_id, event.seq, name, state.status, text))
    return messages


# --- the gapless merge -------------------------------------------------------------------------


@given(history=st.sampled_from(HISTORIES), data=st.data())
def test_any_mix_of_sources_is_delivered_once_in_seq_order(
    history: list[Event], data: st.DataObject
) -> None:
    messages = messages_of(history)
    # Three sources (cache, read model, live), each some subset, with repeats, in any order.
    deliveries = data.draw(st.lists(st.lists(st.sampled_from(messages), max_size=30),
                                    min_size=1, max_size=6))
    deliveries.append(data.draw(st.permutations(messages)))  # eventually everything arrives
    timeline, out = OrderTimeline(), []
    for batch in deliveries:
        timeline.add(batch)
        out += timeline.take_ready()

    assert [m.seq for m in out] == list(range(1, len(history) + 1))
    assert timeline.finished and out[-1].is_terminal and not timeline.has_gap


def test_a_gap_holds_back_what_follows_it() -> None:
    messages = messages_of(HISTORIES[0])
    timeline = OrderTimeline()
    timeline.add([messages[0], messages[2], messages[3]])

    assert [m.seq for m in timeline.take_ready()] == [1]
    assert timeline.has_gap
    timeline.add([messages[1]])
    assert [m.seq for m in timeline.take_ready()] == [2, 3, 4]


def test_resuming_takes_the_status_of_the_event_before() -> None:
    messages = messages_of(HISTORIES[0])
    timeline = OrderTimeline(after_seq=2)
    timeline.add(messages[1:])

    assert [m.seq for m in timeline.take_ready()] == [m.seq for m in messages[2:]]
    finished = OrderTimeline(after_seq=len(messages))
    finished.add(messages[-1:])
    assert finished.finished and finished.take_ready() == []


def test_the_status_each_message_carries_is_delivered_as_is() -> None:
    # The writer recorded it in the envelope; the timeline folds nothing (a null, from a v2
    # record whose event alone does not tell it, stays null).
    order_id = "0b6f2c52-6a53-4f7e-9a4b-2d1c8e0f9a11"
    unknown = OrderMessage(order_id, 2, "CancelRejected", None,
                           encode(order_id, None, "CancelRejected", 2, T0, {}))
    timeline = OrderTimeline(after_seq=1)
    timeline.add([OrderMessage(order_id, 1, "TransactionSubmitted", OrderStatus.SUBMITTED, "{}"),
                  unknown])

    assert timeline.take_ready() == [unknown]


# --- mailbox -------------------------------------------------------------------------------------


async def test_a_full_mailbox_overflows_once_and_frees_its_items() -> None:
    mailbox: Mailbox[int] = Mailbox(3)
    told: list[str] = []
    mailbox.on_overflow = lambda: told.append("overflow")
    for item in range(10):
        mailbox.offer(item)

    assert told == ["overflow"] and mailbox.overflowed
    with pytest.raises(SubscriberTooSlow):
        await mailbox.take()


async def test_a_stopped_mailbox_hands_over_what_it_holds_then_ends() -> None:
    mailbox: Mailbox[int] = Mailbox(3)
    mailbox.offer(1)
    mailbox.stop()

    assert await mailbox.take() == 1
    with pytest.raises(FeedStopped):
        await mailbox.take()


async def test_take_waits_for_the_next_item() -> None:
    mailbox: Mailbox[int] = Mailbox(3)
    waiter = asyncio.create_task(mailbox.take())
    await asyncio.sleep(0)
    mailbox.offer(7)
    assert await asyncio.wait_for(waiter, 1) == 7


# --- recent events --------------------------------------------------------------------------------


def test_the_recent_cache_keeps_the_latest_orders_and_their_last_events() -> None:
    recent = RecentEvents(max_orders=2, per_order=3)
    for history in HISTORIES[:3]:
        for message in messages_of(history):
            recent.remember(message)

    assert len(recent) == 2
    assert recent.messages_of(HISTORIES[0][0].order_id) == []
    kept = recent.messages_of(HISTORIES[2][0].order_id)
    assert [m.seq for m in kept] == [e.seq for e in HISTORIES[2][-3:]]


# --- parameters -----------------------------------------------------------------------------------


def test_filters_match_status_type_and_either_token() -> None:
    filters = Filters.parse({"status": "Confirmed, failed", "token": "sol"})
    message = OrderMessage("o", 6, "OrderConfirmed", OrderStatus.CONFIRMED, "{}",
                           tokens=frozenset({"SOL", "USDC"}))

    assert filters.matches(message)
    assert not Filters.parse({"type": "OrderFailed"}).matches(message)
    assert not Filters.parse({"token": "BONK"}).matches(message)
    assert Filters.parse({}).matches(message)


@pytest.mark.parametrize("query", [{"status": "lost"}, {"type": "OrderLost"}])
def test_unknown_filter_values_are_refused_with_a_reason(query: dict[str, str]) -> None:
    with pytest.raises(StreamClosed) as refused:
        Filters.parse(query)
    assert refused.value.closing.code == BAD_REQUEST


def test_start_positions_parse() -> None:
    assert StartAt.parse(None) == StartAt("latest")
    assert StartAt.parse("earliest") == StartAt("earliest")
    assert StartAt.parse("offset:42") == StartAt("offset", 42)
    utc = int(T0.timestamp() * 1000)
    assert StartAt.parse("time:2025-01-06T09:30:00") == StartAt("time", utc)
    assert StartAt.parse("time:2025-01-06T10:30:00 01:00") == StartAt("time", utc)
    assert StartAt.parse("time:2025-01-06T09:30:00Z") == StartAt("time", utc)


@pytest.mark.parametrize("text", ["yesterday", "offset:-1", "offset:x", "time:noon", "offset:"])
def test_bad_start_positions_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(StreamClosed) as refused:
        StartAt.parse(text)
    assert refused.value.closing.code == BAD_REQUEST
