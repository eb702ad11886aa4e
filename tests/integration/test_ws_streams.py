"""The live edge's WebSocket streams against a real Kafka broker and PostgreSQL.

Events come from the pure aggregate (decide/evolve) through the engine's codec into the
test's `orders.events`; the real projector folds them into the test's read model; the API
runs in uvicorn on a free port; clients are the `websockets` library. Nothing sleeps to wait
for a condition: the only sleeps pace the event replay and the clients' connection times.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import psycopg
from fastapi import FastAPI
from psycopg import sql

from api.app import create_app
from api.live import LiveConfig, live_router
from bench.order_histories import HistoryMaker, interleaved
from domain.orders import Event
from oee.settings import Settings
from tests.e2e.live_harness import (
    CODEC,
    EventWriter,
    Received,
    expected,
    projecting,
    read_stream,
    read_until_closed,
    seen,
    serving,
    stalled_client,
    until,
)


def histories(count: int, seed: int, orders_per_s: float = 1000.0) -> list[list[Event]]:
    maker = HistoryMaker(seed=seed, start=datetime.now(UTC), orders_per_s=orders_per_s)
    return list(maker.orders(count))


def live_only_app(settings: Settings, config: LiveConfig) -> FastAPI:
    """Just the live router (its lifespan merged into the app's), with test-sized bounds."""
    app = FastAPI()
    app.include_router(live_router(settings, config))
    return app


def projected_events(settings: Settings) -> int:
    assert settings.database_url
    with psycopg.connect(settings.database_url) as conn:
        query = sql.SQL("select count(*) from {}.order_events").format(
            sql.Identifier(settings.db_schema))
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


async def replay(writer: EventWriter, orders: list[list[Event]],
                 on_first: dict[str, asyncio.Event]) -> None:
    """Produce every event at its own pace (the histories' clocks), setting `on_first`."""
    events = interleaved(orders)
    origin, start = events[0].occurred_at, time.monotonic()
    for event in events:
        due = start + (event.occurred_at - origin).total_seconds()
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing, not waiting
        await writer.send(event)
        if event.seq == 1:
            on_first[event.order_id].set()


# --- per-order streams ------------------------------------------------------------------------


async def test_every_client_sees_its_order_whole_and_in_order_whenever_it_connects(
    provisioned: Settings,
) -> None:
    orders = histories(200, seed=11, orders_per_s=60)
    first = {history[0].order_id: asyncio.Event() for history in orders}
    rng = random.Random(3)
    delays = [rng.uniform(0.0, 5.0) for _ in orders]

    async def client(base: str, order_id: str, delay: float) -> Received:
        await first[order_id].wait()
        await asyncio.sleep(delay)  # the client's own connection time, 0-5 s after seq 1
        return await read_stream(f"{base}/api/orders/{order_id}/stream")

    # Two API processes side by side: each has its own fan-out; clients spread over both.
    async with (serving(create_app(provisioned)) as one, serving(create_app(provisioned)) as two,
                EventWriter(provisioned) as writer, projecting(provisioned)):
        clients = [asyncio.create_task(client((one, two)[i % 2].url, history[0].order_id, delay))
                   for i, (history, delay) in enumerate(zip(orders, delays))]
        await replay(writer, orders, first)
        results = await asyncio.gather(*clients)

    for history, received in zip(orders, results):
        assert seen(received) == expected(history), history[0].order_id
        assert received.code == 1000, received.reason
        assert received.reason == f"order {received.messages[-1]['status']}"


async def test_a_client_connecting_after_the_end_gets_the_full_history_from_the_read_model(
    provisioned: Settings,
) -> None:
    orders = histories(20, seed=12)
    async with EventWriter(provisioned) as writer, projecting(provisioned):
        await writer.send_all(interleaved(orders))
        total = sum(len(history) for history in orders)
        await until(lambda: projected_events(provisioned) == total, 30, "the projection")
    # The API starts after the fact: its fan-out never saw these events, nor cached them.
    async with serving(create_app(provisioned)) as api:
        results = await asyncio.gather(*(
            read_stream(f"{api.url}/api/orders/{history[0].order_id}/stream")
            for history in orders))

    for history, received in zip(orders, results):
        assert seen(received) == expected(history)
        assert received.code == 1000
        for message, event in zip(received.messages, history):
            assert message["data"] == CODEC.event_to_json(event)
            assert message["orderId"] == event.order_id
            assert datetime.fromisoformat(message["timestamp"]) == event.occurred_at


async def test_catch_up_and_live_give_identical_messages(provisioned: Settings) -> None:
    (history,) = histories(1, seed=13)
    order_id = history[0].order_id
    async with serving(create_app(provisioned)) as api, EventWriter(provisioned) as writer:
        early = asyncio.create_task(read_stream(f"{api.url}/api/orders/{order_id}/stream"))
        await until(lambda: api.subscribers() >= 1, 10, "the early client")
        async with projecting(provisioned):
            await writer.send_all(history)
            live = await early
            await until(lambda: projected_events(provisioned) == len(history), 30, "projection")
    async with serving(create_app(provisioned)) as api:  # a new process: nothing cached
        late = await read_stream(f"{api.url}/api/orders/{order_id}/stream")

    assert live.messages == late.messages
    assert seen(live) == expected(history)


async def test_a_stream_closes_the_gap_when_the_projector_lags_behind_kafka(
    provisioned: Settings,
) -> None:
    (history,) = [h for h in histories(10, seed=14) if len(h) >= 6][:1]
    order_id, half = history[0].order_id, len(history) // 2
    async with EventWriter(provisioned) as writer:
        await writer.send_all(history[:half])  # before the API runs, and not projected yet
        async with serving(create_app(provisioned)) as api:
            client = asyncio.create_task(read_stream(f"{api.url}/api/orders/{order_id}/stream"))
            await until(lambda: api.subscribers() >= 1, 10, "the client")
            await writer.send_all(history[half:])  # live: buffered behind a gap
            await asyncio.wait({client}, timeout=1.0)
            assert not client.done(), "delivered something it could not have in order"
            async with projecting(provisioned):  # the projector catches up: the gap closes
                received = await client

    assert seen(received) == expected(history)
    assert received.code == 1000


async def test_a_client_connecting_before_the_order_exists_gets_it_from_the_first_event(
    provisioned: Settings,
) -> None:
    orders = histories(5, seed=15)
    async with (serving(create_app(provisioned)) as api, EventWriter(provisioned) as writer,
                projecting(provisioned)):
        clients = [asyncio.create_task(read_stream(f"{api.url}/api/orders/{h[0].order_id}/stream"))
                   for h in orders]
        await until(lambda: api.subscribers() >= len(orders), 10, "the clients")
        await writer.send_all(interleaved(orders))
        results = await asyncio.gather(*clients)

    assert [seen(r) for r in results] == [expected(h) for h in orders]


async def test_after_seq_resumes_after_the_given_event(provisioned: Settings) -> None:
    (history,) = [h for h in histories(10, seed=16) if len(h) >= 6][:1]
    order_id, n = history[0].order_id, len(history)
    async with EventWriter(provisioned) as writer, projecting(provisioned):
        await writer.send_all(history)
        await until(lambda: projected_events(provisioned) == n, 30, "the projection")
    async with serving(create_app(provisioned)) as api:
        url = f"{api.url}/api/orders/{order_id}/stream"
        resumed = await read_stream(f"{url}?afterSeq=3")
        after_end = await read_stream(f"{url}?afterSeq={n}")
        bad = await read_stream(f"{url}?afterSeq=-1")

    assert seen(resumed) == expected(history)[3:]
    assert (resumed.code, after_end.code, after_end.messages) == (1000, 1000, [])
    assert bad.code == 4400 and "afterSeq" in bad.reason


async def test_an_unknown_order_is_closed_4404_after_a_bounded_wait(
    provisioned: Settings,
) -> None:
    app = live_only_app(provisioned, LiveConfig(unknown_order_wait_s=1.0))
    async with serving(app) as api:
        started = time.monotonic()
        unknown = await read_stream(f"{api.url}/api/orders/{uuid.uuid4()}/stream")
        waited = time.monotonic() - started
        not_an_id = await read_stream(f"{api.url}/api/orders/not-an-order/stream")

    assert unknown.code == 4404 and "not found" in unknown.reason
    assert waited >= 1.0
    assert not_an_id.code == 4404 and "not found" in not_an_id.reason  # names no order


# --- all orders -------------------------------------------------------------------------------


async def test_the_all_orders_stream_sends_every_event_and_filters(provisioned: Settings) -> None:
    orders = histories(30, seed=17)
    events = interleaved(orders)
    confirmed = sum(1 for e in events if type(e).__name__ == "OrderConfirmed")
    async with serving(create_app(provisioned)) as api, EventWriter(provisioned) as writer:
        url = f"{api.url}/api/orders/stream/all"
        everything = asyncio.create_task(read_stream(url, limit=len(events)))
        done = asyncio.create_task(read_stream(f"{url}?status=confirmed&token=sol,usdc,usdt",
                                               limit=confirmed))
        await until(lambda: api.subscribers() >= 2, 10, "the clients")
        await writer.send_all(events)
        every, only_confirmed = await everything, await done
        bad = await read_stream(f"{url}?status=lost")

    by_order: dict[str, list[int]] = {}
    for message in every.messages:
        by_order.setdefault(message["orderId"], []).append(message["seq"])
    assert {o: s for o, s in by_order.items()} == {
        h[0].order_id: [e.seq for e in h] for h in orders}
    assert {m["type"] for m in only_confirmed.messages} == {"OrderConfirmed"}
    assert bad.code == 4400 and "unknown status: lost" in bad.reason


async def test_a_slow_client_is_dropped_and_the_others_get_everything(
    provisioned: Settings,
) -> None:
    async with serving(create_app(provisioned)) as api, EventWriter(provisioned) as writer:
        url, fanout = f"{api.url}/api/orders/stream/all", api.live.fanout
        port = int(api.url.rpartition(":")[2])
        async with stalled_client(url, port) as stalled:
            fast = Received()
            reader = asyncio.create_task(read_stream(url, received=fast, timeout=120))
            await until(lambda: fanout.subscribers >= 2, 10, "the clients")
            produced, seed = 0, 100
            while fanout.stats.overflowed == 0:  # until the stalled client's mailbox is full
                assert produced < 200_000, "the stalled client was never dropped"
                burst = interleaved(histories(200, seed=seed))
                await writer.send_all(burst)
                produced, seed = produced + len(burst), seed + 1
            await until(lambda: len(fast.messages) == produced, 60, "the fast client")
            assert not reader.done() and fast.code is None
            dropped = await read_until_closed(stalled)
            reader.cancel()
        overflowed = fanout.stats.overflowed

    assert dropped.code == 1008 and "slow consumer" in dropped.reason
    assert overflowed == 1
    assert len({(m["orderId"], m["seq"]) for m in fast.messages}) == produced


# --- raw topics -------------------------------------------------------------------------------


async def test_a_topic_streams_from_an_offset_and_from_a_time(provisioned: Settings) -> None:
    (history,) = [h for h in histories(10, seed=18) if len(h) >= 6][:1]
    base_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    async with serving(create_app(provisioned)) as api, EventWriter(provisioned) as writer:
        coordinates = [await writer.send(event, timestamp_ms=base_ms + 1000 * i)
                       for i, event in enumerate(history)]
        partition, offset_of_seq_3 = coordinates[2]
        topic_url = f"{api.url}/api/topics/orders.events/stream"
        from_offset = await read_stream(
            f"{topic_url}?from=offset:{offset_of_seq_3}&partition={partition}",
            limit=len(history) - 2)
        instant = quote(datetime.fromtimestamp((base_ms + 3500) / 1000, UTC).isoformat())
        from_time = await read_stream(f"{topic_url}?from=time:{instant}&partition={partition}",
                                      limit=len(history) - 4)
        earliest = await read_stream(f"{topic_url}?from=earliest&key={history[0].order_id}",
                                     limit=len(history))

    assert [m["offset"] for m in from_offset.messages] == [o for _, o in coordinates[2:]]
    assert [m["value"]["seq"] for m in from_offset.messages] == [e.seq for e in history[2:]]
    assert [m["value"]["seq"] for m in from_time.messages] == [e.seq for e in history[4:]]
    assert [m["value"]["data"] for m in earliest.messages] == [
        CODEC.event_to_json(e) for e in history]
    first = earliest.messages[0]
    assert (first["topic"], first["key"], first["value"]["type"]) == (
        provisioned.topics.events, history[0].order_id, "OrderAccepted")
    assert first["timestamp"] == datetime.fromtimestamp(base_ms / 1000, UTC).isoformat()


async def test_unknown_topics_and_bad_positions_are_closed_with_a_reason(
    provisioned: Settings,
) -> None:
    app = live_only_app(provisioned, LiveConfig(max_topic_streams=1))
    async with serving(app) as api:
        url = f"{api.url}/api/topics"
        unknown = await read_stream(f"{url}/orders.secrets/stream")
        bad_from = await read_stream(f"{url}/orders.events/stream?from=yesterday")
        bad_time = await read_stream(f"{url}/orders.events/stream?from=time:noon")
        bad_partition = await read_stream(f"{url}/orders.events/stream?partition=99")
        holder = asyncio.create_task(read_stream(f"{url}/orders.commands/stream"))
        await until(lambda: api.live.topic_slots.locked(), 10, "the first topic stream")
        one_too_many = await read_stream(f"{url}/orders.events/stream")
        holder.cancel()

    assert unknown.code == 4404 and "unknown topic 'orders.secrets'" in unknown.reason
    assert bad_from.code == 4400 and "from must be" in bad_from.reason
    assert bad_time.code == 4400 and "ISO 8601" in bad_time.reason
    assert bad_partition.code == 4400 and "partition 99" in bad_partition.reason
    assert one_too_many.code == 1013
