"""The hash chain against the real broker: orders run through a real worker; the log they
leave verifies (`oee replay --verify`, the API's `?verify=true`); a copy of it with one
event's bytes rewritten is named by `oee replay --verify`: order, seq, topic/partition/offset."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.topics import TopicSpec, create_topics
from oee.settings import Settings
from projections.projector import ProjectorOptions, project
from schemas.codec import Codec
from tests.harness import EventLog, edge, wait_until, workers
from tests.integration.test_replay import replay

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5", "slippageBps": 100}
Record = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]


async def read_log(settings: Settings) -> list[Record]:
    """Every record of the event store: (partition, offset, key, value, headers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    try:
        tps = [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                for r in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    records.append((r.partition, r.offset, r.key, r.value, list(r.headers)))
    finally:
        await consumer.stop()
    return records


async def copy_log(settings: Settings, records: list[Record]) -> None:
    """The records into `settings`' (new) event store, same partitions, same offsets."""
    assert settings.kafka_bootstrap_servers
    await create_topics(settings.kafka_bootstrap_servers, [
        TopicSpec(settings.topics.events, settings.partitions, settings.replication_factor)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for partition, offset, key, value, headers in records:
            sent = await (await producer.send(settings.topics.events, value, key=key,
                                               partition=partition, headers=headers))
            assert sent.offset == offset  # the copy's coordinates are the original's
    finally:
        await producer.stop()


def chain_report(lines: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    parsed = [orjson.loads(line) for line in lines]
    broken = [line["broken"] for line in parsed if "broken" in line]
    return broken, next(line["chain"] for line in parsed if "chain" in line)


async def test_a_rewritten_event_is_named_and_an_intact_log_verifies(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        ids = [str((await client.post("/api/orders/execute", json=ORDER)).json()["orderId"])
               for _ in range(3)]
        await wait_until(lambda: log.all_terminal(ids), 120, "3 orders to finish")
    codec = Codec.load()
    records = await read_log(provisioned)
    events = [(p, o, codec.decode_envelope(v)) for p, o, k, v, h in records if k and v]
    assert all(e.hash is not None for _, _, e in events)  # every event of the worker chained

    code, lines = await replay(provisioned, capsys, "--all", "--verify", "--format", "json")
    broken, chain = chain_report(lines)
    assert (code, broken) == (0, [])
    assert chain["verified"] and chain["events"] == len(events) and chain["chained"] == 3

    target = ids[1]
    partition, offset, victim = [e for e in events if e[2].event.order_id == target][2]
    assert victim.event.seq == 3
    cid = victim.event.correlation_id.encode()
    forged = cid[:-1] + (b"0" if cid[-1:] != b"0" else b"1")
    tampered = [(p, o, k, v.replace(cid, forged, 1) if (p, o) == (partition, offset) and v
                 else v, h) for p, o, k, v, h in records]
    copy = provisioned.model_copy(update={"topic_prefix": f"{provisioned.topic_prefix}copy."})
    await copy_log(copy, tampered)

    code, lines = await replay(copy, capsys, "--all", "--verify", "--format", "json")
    broken, chain = chain_report(lines)
    assert code == 1 and not chain["verified"]
    assert [(b["orderId"], b["seq"], b["topic"], b["partition"], b["offset"])
            for b in broken] == [(target, 3, copy.topics.events, partition, offset)]
    assert "the event was changed" in broken[0]["reason"]
    assert chain["firstBroken"] == broken[0]

    code, lines = await replay(copy, capsys, "--order", ids[0], "--verify", "--format", "json")
    assert code == 0 and chain_report(lines)[1]["verified"]  # the other orders still hold


async def test_the_api_verifies_one_order_from_kafka(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        order_id = str((await client.post("/api/orders/execute", json=ORDER)).json()["orderId"])
        await wait_until(lambda: log.all_terminal([order_id]), 120, "the order to finish")
        await project(provisioned, ProjectorOptions(until_end=True))
        answer = await client.get(f"/api/orders/{order_id}/events", params={"verify": "true"})
        plain = await client.get(f"/api/orders/{order_id}/events")
        bad = await client.get(f"/api/orders/{order_id}/events", params={"verify": "maybe"})

    codec = Codec.load()
    last = [codec.decode_envelope(v) for _, _, k, v, _ in await read_log(provisioned)
            if k == order_id.encode() and v][-1]
    assert answer.status_code == 200, answer.text
    chain = answer.json()["chain"]
    assert chain == {"verified": True, "events": last.event.seq, "unchained": 0,
                     "head": last.hash.hex() if last.hash else None, "brokenAt": None}
    assert plain.json()["chain"] is None and plain.json()["events"] == answer.json()["events"]
    assert bad.status_code == 400
