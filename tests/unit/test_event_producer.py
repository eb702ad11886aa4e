"""The writer's event-store producer: renewed after a failed delivery, never a pending future."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from streams.event_producer import RenewingProducer


class FakeClient:
    """A producer whose deliveries the test settles; `stop` may hang (a dead sender)."""

    def __init__(self, name: int, hang_on_stop: bool = False) -> None:
        self.name = name
        self.hang_on_stop = hang_on_stop
        self.started = self.stopped = False
        self.pending: list[asyncio.Future[Any]] = []
        self._message_accumulator = self  # what _fail_pending reaches for

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        if self.hang_on_stop:
            await asyncio.Event().wait()
        self.stopped = True

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def fail_all(self, error: BaseException) -> None:
        for future in self.pending:
            if not future.done():
                future.set_exception(error)


class Clients:
    def __init__(self, hang_on_stop: bool = False) -> None:
        self.made: list[FakeClient] = []
        self.hang_on_stop = hang_on_stop

    def __call__(self) -> FakeClient:
        self.made.append(FakeClient(len(self.made), self.hang_on_stop))
        return self.made[-1]


async def send(producer: RenewingProducer) -> asyncio.Future[Any]:
    return await producer.send("orders.events", b"k", b"v", 3, None, None)


async def test_a_failed_delivery_retires_the_producer_and_the_next_send_gets_a_new_one(
) -> None:
    clients = Clients()
    producer = RenewingProducer(clients)
    first, second = await send(producer), await send(producer)
    first.set_exception(KafkaError("refused"))
    await asyncio.sleep(0)  # the done callback
    second.set_exception(KafkaError("out of order"))  # same generation: no second renewal
    await asyncio.sleep(0)

    third = await send(producer)

    assert len(clients.made) == 2 and producer.renewals == 1
    assert third in clients.made[1].pending
    await producer.stop()
    assert clients.made[0].stopped and clients.made[1].stopped


async def test_a_successful_delivery_keeps_the_producer() -> None:
    clients = Clients()
    producer = RenewingProducer(clients)
    (await send(producer)).set_result(None)
    await asyncio.sleep(0)
    await send(producer)
    assert len(clients.made) == 1 and producer.renewals == 0


async def test_a_retired_producer_that_cannot_stop_fails_what_it_still_holds() -> None:
    clients = Clients(hang_on_stop=True)
    producer = RenewingProducer(clients, stop_timeout_s=0.05)
    refused, stuck = await send(producer), await send(producer)
    refused.set_exception(KafkaError("refused"))

    # Never left pending: the writer folds a partition again only once these settle.
    with pytest.raises(KafkaError):
        await asyncio.wait_for(stuck, 2)


async def test_nothing_is_sent_once_stopped() -> None:
    producer = RenewingProducer(Clients())
    await producer.stop()
    with pytest.raises(KafkaError):
        await send(producer)
