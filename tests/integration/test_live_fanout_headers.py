"""The live fan-out reads the record headers first (real Kafka, the API in uvicorn): an event
of an order nobody watches is not decoded as it arrives, yet a stream that opens later still
gets it, from the recent-events cache, and the all-orders stream gets every event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from bench.order_histories import HistoryMaker
from domain.orders import Event
from oee.api_bootstrap import bootstrap
from oee.settings import Settings
from schemas import headers
from tests.e2e.live_harness import CODEC, expected, read_stream, seen, serving, until
from tests.orders_support import WriterStatuses


async def send_as_the_worker(settings: Settings, events: Iterable[Event],
                             statuses: WriterStatuses) -> None:
    """Produce `events` with the headers the order agent's outbox puts on them, and the
    status after each that `statuses` (the writer's fold so far) gives."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                settings.topics.events, CODEC.encode_event(event, status=statuses.after(event)),
                key=event.order_id.encode(), headers=headers.build(event, "/oee/worker"))
    finally:
        await producer.stop()


async def test_an_unwatched_order_is_decoded_only_when_a_stream_asks_for_it(
    provisioned: Settings,
) -> None:
    (history,) = [h for h in HistoryMaker(seed=41).orders(10) if len(h) >= 6][:1]
    half, statuses = len(history) // 2, WriterStatuses()
    async with serving(bootstrap(provisioned)) as api:
        fanout = api.live.fanout
        await send_as_the_worker(provisioned, history[:half], statuses)  # no stream, no projector
        await until(lambda: fanout.stats.records >= half, 30, "the fan-out to read them")
        assert fanout.stats.deferred == half  # none decoded, the OrderAccepted included
        client = asyncio.create_task(read_stream(f"{api.url}/api/orders/"
                                                 f"{history[0].order_id}/stream"))
        await until(lambda: api.subscribers() >= 1, 10, "the client")
        await send_as_the_worker(provisioned, history[half:], statuses)  # live, wanted: decoded
        received = await client
    assert seen(received) == expected(history)
    assert fanout.stats.deferred == half


async def test_with_an_all_orders_stream_open_every_event_is_decoded_and_sent(
    provisioned: Settings,
) -> None:
    histories = list(HistoryMaker(seed=42).orders(3))
    events = [event for history in histories for event in history]
    async with serving(bootstrap(provisioned)) as api:
        fanout = api.live.fanout
        client = asyncio.create_task(read_stream(f"{api.url}/api/orders/stream/all",
                                                 limit=len(events)))
        await until(lambda: api.subscribers() >= 1, 10, "the client")
        await send_as_the_worker(provisioned, events, WriterStatuses())
        received = await client
    assert fanout.stats.deferred == 0
    assert sorted((m["orderId"], m["seq"]) for m in received.messages) == sorted(
        (e.order_id, e.seq) for e in events)
