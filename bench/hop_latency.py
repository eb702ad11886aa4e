"""Where an order's time goes, hop by hop: `python -m bench.hop_latency [--orders N]`.

Starts a throwaway stack (zero venue latency), places N orders in a closed loop of C clients
(or, with `--rate R`, R orders/s in an open loop: the hops below saturation),
then reads every record of the order's topics back from Kafka — commands, events, work items —
and merges them into one timeline per order by record timestamp (one clock: everything runs
on this machine). Prints, for each pair of consecutive steps (`topic:Type -> topic:Type`),
the count and the p50/p90/max gap. A hop whose gap dwarfs the others is where orders queue.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.orders_bench import ZERO_LATENCY, one_run
from bench.stack import Stack
from infra.schema_registry import reading_codec
from oee.settings import Settings

Step = tuple[float, str]  # (record timestamp in s, "topic:Type")


async def _read_all(settings: Settings, topic: str) -> list[tuple[float, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)
                      or await _partitions(consumer, topic)]
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        records: list[tuple[float, bytes]] = []
        while await _behind(consumer, ends):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend((r.timestamp / 1000, r.value) for r in batch if r.value)
        return records
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a fresh consumer may not know the topic
    return consumer.partitions_for_topic(topic) or set()


async def timelines(settings: Settings) -> dict[str, list[Step]]:
    codec = reading_codec(settings)
    topics = settings.topics
    readers: list[tuple[str, str, Any]] = [
        (topics.commands, "cmd", codec.decode_command), (topics.events, "evt", codec.decode_event),
        (topics.routing, "route", codec.decode_work), (topics.execution, "exec", codec.decode_work)]
    per_order: dict[str, list[Step]] = defaultdict(list)
    for topic, label, decode in readers:
        for timestamp, value in await _read_all(settings, topic):
            try:
                item = decode(value)
            except Exception:  # claim records, dead letters: not steps of an order
                continue
            per_order[item.order_id].append((timestamp, f"{label}:{type(item).__name__}"))
    for steps in per_order.values():
        steps.sort()
    return per_order


def hop_table(per_order: dict[str, list[Step]]) -> list[str]:
    gaps: dict[str, list[float]] = defaultdict(list)
    for steps in per_order.values():
        for (t0, a), (t1, b) in zip(steps, steps[1:]):
            gaps[f"{a} -> {b}"].append((t1 - t0) * 1000)
    rows = []
    for hop, values in sorted(gaps.items(), key=lambda kv: -sum(kv[1])):
        values.sort()
        rows.append(f"{hop:62s} n={len(values):6d} p50={statistics.median(values):9.1f} ms "
                    f"p90={values[int(len(values) * 0.9)]:9.1f} ms max={values[-1]:9.1f} ms")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hop_latency")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="orders/s in an open loop (below saturation); 0: closed loop")
    args = parser.parse_args(argv)
    mode = "open" if args.rate > 0 else "closed"
    with Stack({**ZERO_LATENCY, "log_level": "WARNING"}) as stack:
        asyncio.run(one_run(stack, "closed", 100, 16, 0, 60))  # warm-up
        print(asyncio.run(one_run(stack, mode, args.orders, args.clients, args.rate, 300)))
        for row in hop_table(asyncio.run(timelines(stack.settings))):
            print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
