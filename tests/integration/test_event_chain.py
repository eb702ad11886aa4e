"""The hash chain against the real broker: orders run through a real worker; the log they
leave verifies (`oee replay --verify`, the API's `?verify=true`) with the worker's checkpoints;
a copy of it with one event's bytes rewritten is named by `oee replay --verify`: order, seq,
topic/partition/offset; a copy rewritten with the order's chain recomputed after the change
is caught by the checkpoints that pinned the old heads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.schema_registry import reading_codec
from infra.topics import TopicSpec, create_topics
from oee.settings import Settings
from projections.projector import ProjectorOptions, project
from schemas.chain import GENESIS
from tests.harness import EventLog, edge, wait_until, workers
from tests.integration.test_replay import replay

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5", "slippageBps": 100}
Record = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]


async def read_log(settings: Settings, topic: str | None = None) -> list[Record]:
    """Every record of the event store (or `topic`): (partition, offset, key, value, headers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    try:
        tps = [TopicPartition(topic or settings.topics.events, p)
               for p in range(settings.partitions)]
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


async def copy_log(settings: Settings, records: list[Record],
                   topic: str | None = None) -> None:
    """The records into `settings`' (new) event store (or `topic`), same partitions, same
    offsets."""
    assert settings.kafka_bootstrap_servers
    topic = topic or settings.topics.events
    await create_topics(settings.kafka_bootstrap_servers, [
        TopicSpec(topic, settings.partitions, settings.replication_factor)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for partition, offset, key, value, headers in records:
            sent = await (await producer.send(topic, value, key=key,
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
    provisioned = provisioned.model_copy(update={"chain_checkpoint_events": 2})
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        ids = [str((await client.post("/api/orders/execute", json=ORDER)).json()["orderId"])
               for _ in range(3)]
        await wait_until(lambda: log.all_terminal(ids), 120, "3 orders to finish")
    codec = reading_codec(provisioned)
    records = await read_log(provisioned)
    events = [(p, o, codec.decode_envelope(v)) for p, o, k, v, h in records if k and v]
    assert all(e.hash is not None for _, _, e in events)  # every event of the worker chained

    code, lines = await replay(provisioned, capsys, "--all", "--verify", "--format", "json")
    broken, chain = chain_report(lines)
    assert (code, broken) == (0, [])
    assert chain["verified"] and chain["events"] == len(events) and chain["chained"] == 3
    assert chain["checkpoints"]["checked"] >= 1 and chain["checkpoints"]["mismatched"] == 0

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

    # A forger who recomputes the order's chain after the change: every link holds again,
    # but the checkpoints written since pinned the old heads.
    pins = await read_log(provisioned, provisioned.topics.checkpoints)
    forged_copy = provisioned.model_copy(
        update={"topic_prefix": f"{provisioned.topic_prefix}forged."})
    await copy_log(forged_copy, rechained(codec, tampered, target), forged_copy.topics.events)
    await copy_log(forged_copy, pins, forged_copy.topics.checkpoints)

    code, lines = await replay(forged_copy, capsys, "--all", "--verify", "--format", "json")
    parsed = [orjson.loads(line) for line in lines]
    mismatches = [line["checkpointMismatch"] for line in parsed if "checkpointMismatch" in line]
    broken, chain = chain_report(lines)
    assert code == 1 and broken == [] and not chain["verified"] and mismatches
    assert {(m["partition"], m["coveredOffset"] >= offset) for m in mismatches} == {
        (partition, True)}  # only the pins after the rewrite, on its partition


def rechained(codec: Any, records: list[Record], order_id: str) -> list[Record]:
    """`records` with `order_id`'s chain recomputed over its (rewritten) events."""
    out: list[Record] = []
    head = None
    for partition, offset, key, value, headers in records:
        if key == order_id.encode() and value:
            envelope = codec.decode_envelope(value)
            value, head = codec.encode_chained_event(
                envelope.event, status=envelope.status, prev_hash=head or GENESIS)
        out.append((partition, offset, key, value, headers))
    return out


async def test_the_api_verifies_one_order_from_kafka(provisioned: Settings) -> None:
    async with workers(provisioned), EventLog(provisioned) as log, \
            edge(provisioned) as client:
        order_id = str((await client.post("/api/orders/execute", json=ORDER)).json()["orderId"])
        await wait_until(lambda: log.all_terminal([order_id]), 120, "the order to finish")
        await project(provisioned, ProjectorOptions(until_end=True))
        answer = await client.get(f"/api/orders/{order_id}/events", params={"verify": "true"})
        plain = await client.get(f"/api/orders/{order_id}/events")
        bad = await client.get(f"/api/orders/{order_id}/events", params={"verify": "maybe"})

    codec = reading_codec(provisioned)
    last = [codec.decode_envelope(v) for _, _, k, v, _ in await read_log(provisioned)
            if k == order_id.encode() and v][-1]
    assert answer.status_code == 200, answer.text
    chain = answer.json()["chain"]
    assert chain == {"verified": True, "events": last.event.seq, "unchained": 0,
                     "head": last.hash.hex() if last.hash else None, "brokenAt": None}
    assert plain.json()["chain"] is None and plain.json()["events"] == answer.json()["events"]
    assert bad.status_code == 400
