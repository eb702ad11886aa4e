"""`python -m bench recovery [--events N]`: how long a worker takes to take over every partition
of a long event store, and how much memory it holds, without and with snapshots (issue 10,
bounded recovery).

Fills `orders.events` (12 partitions, a throwaway Kafka) with N events of a busy day's
history (`bench.order_histories`: most orders ended, confirmed, failed or cancelled; 1 % limit
orders still waiting; 2 % of market orders cut short, in flight), chained as the writer
chains them; a few thousand such histories are made and encoded once, and copied under new
ids in producer batches (`Template`), so the fill is not what limits N. Then it measures, each
in a fresh process (so its memory is the takeover's alone), assign → every partition ready:
1. without snapshots: claim and fold every partition from offset 0; then the snapshots are
   written (their size and time are reported);
2. `--tail` more events are appended (new orders, by the same writer), and a fresh process
   takes over with snapshots: the latest snapshot and the tail only.
Reported: seconds, peak and final RSS of the measuring process, orders in flight / ended,
snapshot bytes. Only Kafka, PostgreSQL and the registry run (`bench.projection_bench.services`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import json
import random
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.order_histories import HistoryMaker
from domain.orders import ExecutionPolicy, decide, evolve, initial_state
from domain.orders.commands import ExecuteOrder
from domain.orders.events import Event
from domain.orders.ids import NAMESPACE
from domain.orders.terms import LimitTerms
from domain.tokens import SOL, USDC
from infra.schema_registry import registered_snapshot_codec
from infra.topics import ensure_topics
from oee.settings import Settings
from schemas.chain import GENESIS, chained_body
from schemas.codec import Codec
from schemas.writer_fence import claim_headers
from streams.event_store import EventStoreReader
from streams.order_states import OrderStates
from streams.snapshots import SnapshotStore, SnapshotWriter

PARTITIONS = 12
WAITING_SHARE = 0.01
IN_FLIGHT_SHARE = 0.02
TEMPLATES = 5_000  # distinct histories the fill copies under new ids
BATCH_BYTES = 1024 * 1024


def histories(seed: int) -> Iterator[list[Event]]:
    """Order histories without end: mostly whole market orders, some cut short (in flight),
    some limit orders waiting."""
    maker, rng = HistoryMaker(seed), random.Random(seed)
    start = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    while True:
        roll = rng.random()
        if roll < WAITING_SHARE:
            yield _waiting(rng, start + timedelta(seconds=rng.randrange(86_400)))
            continue
        story = maker.order()
        yield story[:rng.randint(1, len(story) - 1)] if roll < WAITING_SHARE + IN_FLIGHT_SHARE \
            else story


def _waiting(rng: random.Random, at: datetime) -> list[Event]:
    order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    terms = LimitTerms(token_in=SOL.mint, token_out=USDC.mint, token_in_symbol="SOL",
                       token_out_symbol="USDC", token_in_decimals=9, token_out_decimals=6,
                       amount_in=10**9 * rng.randint(1, 20), slippage_bps=50,
                       limit_price=Decimal(rng.randint(300, 900)))
    command = ExecuteOrder(command_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           order_id=order_id, issued_at=at, terms=terms)
    return list(decide(initial_state(order_id), command, now=at, policy=ExecutionPolicy()))


@dataclass(frozen=True, slots=True)
class Template:
    """One order's history, encoded once (unchained Avro bodies): the fill copies it under new
    ids. An order id and an event id (uuid5 of order and seq) are both 36 ASCII characters, so
    replacing them keeps every Avro string's length, and the copy is a valid record of its own
    order (ids derived from the order id, like its commands', follow it); it is then chained
    (schemas.chain) as the writer chains its events."""

    order_id: bytes
    events: tuple[tuple[int, bytes, bytes], ...]  # (seq, event id, unchained body)


def templates(seed: int, count: int) -> tuple[list[Template], bytes]:
    """`count` histories of the day's mix (`histories`), encoded once; and the records'
    header (the codec's framing) they go out with."""
    codec = Codec.load()
    header_size = 5 if codec.writes_schema_ids else 2
    made: list[Template] = []
    header = b""
    for story in itertools.islice(histories(seed), count):
        state = initial_state(story[0].order_id)
        events = []
        for event in story:
            state = evolve(state, event)
            assert state.status is not None
            value = codec.encode_event(event, status=state.status)
            header = value[:header_size]
            events.append((event.seq, event.event_id.encode(), value[header_size:]))
        made.append(Template(story[0].order_id.encode(), tuple(events)))
    return made, header


def copies(made: list[Template], header: bytes, seed: int
           ) -> Iterator[tuple[bytes, list[bytes]]]:
    """Endless orders (key, chained values), each a template under a new order id."""
    rng = random.Random(seed)
    while True:
        template = made[rng.randrange(len(made))]
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        key, head, values = order_id.encode(), GENESIS, []
        for seq, template_event_id, body in template.events:
            body = (body.replace(template.order_id, key)
                    .replace(template_event_id, _event_id(key, seq)))
            chained, head = chained_body(body, head)
            values.append(header + chained)
        yield key, values


def _event_id(order_id: bytes, seq: int) -> bytes:
    """`domain.orders.ids.event_id` without building UUID objects (the fill's hot spot):
    uuid5 is SHA-1 over the namespace and the name, version 5 and the RFC 4122 variant."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + order_id + b"/%d" % seq).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


_NAMESPACE = NAMESPACE.bytes


async def fill(settings: Settings, events: int, seed: int) -> dict[str, int]:
    """Append `events` events (whole histories, each in its order's partition), a batch per
    partition at a time: copies of `TEMPLATES` histories under new ids (see `Template`)."""
    made, header = templates(seed, TEMPLATES)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks=1,
                                max_batch_size=BATCH_BYTES, max_request_size=4 * BATCH_BYTES)
    await producer.start()
    written = orders = 0
    topic = settings.topics.events
    try:
        batches = [producer.create_batch() for _ in range(PARTITIONS)]
        pending: list[asyncio.Future[Any]] = []

        async def flush(partition: int) -> None:
            pending.append(await producer.send_batch(batches[partition], topic,
                                                     partition=partition))
            batches[partition] = producer.create_batch()
            if len(pending) >= 4 * PARTITIONS:  # bounded: the broker keeps up
                await asyncio.gather(*pending)
                pending.clear()

        for key, values in copies(made, header, seed):
            partition = zlib.crc32(key) % PARTITIONS
            for value in values:
                if batches[partition].append(key=key, value=value, timestamp=None) is None:
                    await flush(partition)
                    batches[partition].append(key=key, value=value, timestamp=None)
            written, orders = written + len(values), orders + 1
            if written >= events:
                break
        for partition in range(PARTITIONS):
            if batches[partition].record_count():
                await flush(partition)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {"events": written, "orders": orders}


async def takeover(settings: Settings, snapshots: bool, write: bool) -> dict[str, Any]:
    """Take every partition (claim, fold: from the snapshot if `snapshots`); optionally
    write the snapshots after. Run in a fresh process: the RSS is the takeover's."""
    codec = Codec.load()
    bootstrap = str(settings.kafka_bootstrap_servers)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    store = SnapshotStore(bootstrap, settings.topics.snapshots,
                          registered_snapshot_codec(settings), settings.snapshot_max_bytes)

    async def claim(partition: int) -> int:
        sent = await producer.send_and_wait(settings.topics.events, b"bench", partition=partition,
                                            headers=claim_headers("bench"))
        return int(sent.offset)

    # As the worker folds: each event with its envelope, so every order's chain head is kept.
    states = OrderStates(EventStoreReader(bootstrap, settings.topics.events),
                         codec.decode_envelope, on_loaded=lambda p, s: None, claim=claim,
                         snapshots=store if snapshots else None)
    try:
        started, cpu = time.monotonic(), time.process_time()
        states.rebalance(range(PARTITIONS))
        loaded = [await states.ready(p) for p in range(PARTITIONS)]
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        gc.collect()
        report: dict[str, Any] = {
            "snapshots": snapshots, "takeover_s": round(seconds, 2),
            "takeover_cpu_s": round(cpu, 2),
            "rss_mb": _memory("VmRSS"), "peak_rss_mb": _memory("VmHWM"),
            "in_flight": sum(len(s.orders) for s in loaded),
            "ended": sum(len(s.terminal) for s in loaded),
            "events_folded": sum(s.end or 0 for s in loaded) - sum(
                s.snapshot_offset or 0 for s in loaded),
            "terminal_id_bytes": sum(s.terminal.nbytes() for s in loaded)}
        if write:
            writer = SnapshotWriter(states.loaded, store,
                                    lambda e, s: codec.encode_event(e, status=s), "bench",
                                    every_events=1, interval_s=3600)
            began = time.monotonic()
            report["snapshots_written"] = await writer.write_due()
            report["snapshot_write_s"] = round(time.monotonic() - began, 2)
            report["snapshot_bytes"] = sum(writer.sizes.values())
        return report
    finally:
        await store.close()
        await producer.stop()


def _memory(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def _measure_in_child(settings: Settings, snapshots: bool, write: bool) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.recovery_bench", "--child",
            json.dumps({"settings": settings.model_dump(mode="json"), "snapshots": snapshots,
                        "write": write})]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_all(events: int, tail: int, seed: int = 11) -> dict[str, Any]:
    from bench.projection_bench import fresh, services

    with services() as base:
        settings = fresh(base).model_copy(update={"partitions": PARTITIONS})
        asyncio.run(ensure_topics(settings, str(settings.kafka_bootstrap_servers)))
        began = time.monotonic()
        filled: dict[str, float] = {**asyncio.run(fill(settings, events, seed))}
        filled["fill_s"] = round(time.monotonic() - began, 1)
        filled["fill_events_per_s"] = round(filled["events"] / max(filled["fill_s"], 0.1))
        whole = _measure_in_child(settings, snapshots=False, write=True)
        appended = asyncio.run(fill(settings, tail, seed + 1))
        from_snapshot = _measure_in_child(settings, snapshots=True, write=False)
    return {"history": filled, "tail": appended, "without_snapshots": whole,
            "with_snapshots": from_snapshot}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench recovery")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=10_000,
                        help="events appended after the snapshots")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        report = asyncio.run(takeover(Settings(**spec["settings"]), spec["snapshots"],
                                      spec["write"]))
        print(json.dumps(report))
        return 0
    print(json.dumps(run_all(args.events, args.tail), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
