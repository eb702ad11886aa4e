"""A delivery the broker refuses for real: the event store turns events away for a while.

The events topic's `max.message.bytes` is set below any event's size (a refusal aiokafka does
not retry), so the writer's events for two orders never land; one of them had its swap in
flight. The worker must not commit the commands past what was not stored, must not decide on
top of state the store does not have, and once the topic takes records again every order must
end with one clean history (seq 1..n, one terminal event), nothing lost and nothing twice.
"""

from __future__ import annotations

import re

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from domain.orders.events import OrderConfirmed
from oee.settings import Settings
from tests.harness import EventLog, WorkerProcess, assert_one_clean_history, edge, wait_until
from tests.integration.kafka_admin import KAFKA_DEFAULT_MAX_MESSAGE_BYTES, events_topic_takes_at_most
from tests.integration.test_market_orders import ORDER, submit


async def command_offset(settings: Settings, order_id: str) -> tuple[int, int] | None:
    """Where the edge put `order_id`'s ExecuteOrder: (partition, offset) of orders.commands."""
    consumer = AIOKafkaConsumer(settings.topics.commands,
                                bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
        for tp, records in batches.items():
            for record in records:
                if record.key == order_id.encode():
                    return tp.partition, record.offset
    finally:
        await consumer.stop()
    return None


async def committed(settings: Settings) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.engine_id)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()
            if tp.topic == settings.topics.commands}


def rewinds(worker: WorkerProcess) -> int:
    text = worker.log_path.read_text() if worker.log_path.exists() else ""
    return len(re.findall(r"what it caused was not stored", text))


async def test_events_the_broker_refuses_are_decided_again_and_never_committed_over(
    provisioned: Settings,
) -> None:
    settings = provisioned.model_copy(update={"confirm_delay_min_ms": 3000,
                                              "confirm_delay_max_ms": 3000,
                                              "log_level": "INFO"})
    async with EventLog(settings) as log, edge(settings) as client:
        worker = WorkerProcess(settings).start()
        try:
            in_flight = await submit(client, ORDER)
            await wait_until(lambda: "TransactionSubmitted" in log.types(in_flight), 60,
                             "the first swap to be in flight")

            await events_topic_takes_at_most(settings, "64")
            refused = await submit(client, {**ORDER, "amountIn": "0.25"})
            await wait_until(lambda: rewinds(worker) >= 3, 60, "the writer to retry")
            where = await command_offset(settings, refused)
            assert where is not None
            partition, offset = where
            assert (await committed(settings)).get(partition, 0) <= offset
            assert log.types(refused) == []  # nothing landed, and nothing out of order

            await events_topic_takes_at_most(settings, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
            await wait_until(lambda: log.all_terminal([in_flight, refused]), 90,
                             "both orders to finish once the store takes events again")
        finally:
            worker.stop()

    for order_id in (in_flight, refused):
        assert_one_clean_history(log, order_id)
        assert isinstance(log.terminal(order_id), OrderConfirmed)
