"""`python -m bench recovery [--events N] [--open N] [--tail N] [--whole]`: how long a worker
takes to take over every partition of a long event store, and how much memory it holds, with
snapshots and (`--whole`) without (issue 10, bounded recovery).

Fills `orders.events` (12 partitions, a throwaway Kafka) with N events of a busy day's
history (`bench.order_histories`: ended market orders, confirmed, failed or cancelled, and
about `--open` orders still open: two thirds limit orders waiting, one third market orders
cut short, in flight), chained as the writer chains them. The open orders are a number, not a
share: what a takeover must restore is the orders open now, and a history ten times longer
does not have ten times as many. A few thousand histories are made and encoded once, and
copied under new ids in producer batches (`Template`), so the fill is not what limits N.

The fill also builds each partition's states as the writer's fold of it would leave them
(ended orders as ids and heads, open ones folded from their records) and writes them as the
partition's snapshot, as a worker does after a fold. With `--whole` (default up to 1 M events:
a whole fold of 10 M takes 20 minutes) a fresh process first claims and folds every partition
from offset 0 and must reach the same states. Then `--tail` more events are appended (new
orders, by the same writer), and a fresh process (its memory is the takeover's alone) takes
over with snapshots: the latest snapshot and the tail only, assign → every partition ready
(`takeover_s`: commands flow from then on), and → every snapshot's orders in flight restored
behind it (`restored_s`). Reported: seconds (wall and CPU), peak and final RSS of the measuring
process, orders open / ended, snapshot bytes. Only Kafka, PostgreSQL and the registry run
(`bench.projection_bench.services`).
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
from domain.orders.state import is_terminal
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
from streams.event_store import EventStoreReader, StoredRecord
from streams.order_states import OrderStates
from streams.partition_fold import PartitionFold, PartitionStates
from streams.snapshots import SnapshotStore, SnapshotWriter

PARTITIONS = 12
TEMPLATES = 5_000  # distinct ended histories the fill copies under new ids (and open ones)
OPEN_TEMPLATES = 1_000
BATCH_BYTES = 1024 * 1024


def histories(seed: int) -> Iterator[list[Event]]:
    """Whole market order histories, each ended."""
    maker = HistoryMaker(seed)
    while True:
        yield maker.order()


def open_histories(seed: int) -> Iterator[list[Event]]:
    """Open orders: two thirds limit orders waiting, one third market orders cut short."""
    maker, rng = HistoryMaker(seed), random.Random(seed)
    start = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    while True:
        if rng.random() < 2 / 3:
            yield _waiting(rng, start + timedelta(seconds=rng.randrange(86_400)))
        else:
            story = maker.order()
            yield story[:rng.randint(1, len(story) - 1)]


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
    ended: bool


def templates(stories: Iterator[list[Event]], count: int) -> tuple[list[Template], bytes]:
    """`count` of `stories`, encoded once; and the records' header (the codec's framing)
    they go out with."""
    codec = Codec.load()
    header_size = 5 if codec.writes_schema_ids else 2
    made: list[Template] = []
    header = b""
    for story in itertools.islice(stories, count):
        state = initial_state(story[0].order_id)
        events = []
        for event in story:
            state = evolve(state, event)
            assert state.status is not None
            value = codec.encode_event(event, status=state.status)
            header = value[:header_size]
            events.append((event.seq, event.event_id.encode(), value[header_size:]))
        made.append(Template(story[0].order_id.encode(), tuple(events), is_terminal(state)))
    return made, header


@dataclass(frozen=True, slots=True)
class Copy:
    key: bytes
    values: list[bytes]  # chained records
    head: bytes  # the hash of its last event
    ended: bool


def copies(ended: list[Template], still_open: list[Template], open_share: float, header: bytes,
           seed: int) -> Iterator[Copy]:
    """Endless orders, each a template under a new order id (open with `open_share`)."""
    rng = random.Random(seed)
    while True:
        pool = still_open if rng.random() < open_share else ended
        template = pool[rng.randrange(len(pool))]
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        key, head, values = order_id.encode(), GENESIS, []
        for seq, template_event_id, body in template.events:
            body = (body.replace(template.order_id, key)
                    .replace(template_event_id, _event_id(key, seq)))
            chained, head = chained_body(body, head)
            values.append(header + chained)
        yield Copy(key, values, head, template.ended)


def _event_id(order_id: bytes, seq: int) -> bytes:
    """`domain.orders.ids.event_id` without building UUID objects (the fill's hot spot):
    uuid5 is SHA-1 over the namespace and the name, version 5 and the RFC 4122 variant."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + order_id + b"/%d" % seq).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


_NAMESPACE = NAMESPACE.bytes


class FoldedByFill:
    """Each partition's states as a fold of what the fill appended would leave them: an ended
    order as its id and head (what the fold keeps of it), an open one folded from its
    records (decoded: the open orders are few). Offsets are counted, and checked against the
    broker's end offsets before the states are used."""

    def __init__(self) -> None:
        codec = Codec.load()
        self.folds = [PartitionFold(f"orders.events[{p}]", codec.decode_envelope)
                      for p in range(PARTITIONS)]
        self.next_offset = [0] * PARTITIONS

    def add(self, partition: int, copy: Copy) -> None:
        fold, first = self.folds[partition], self.next_offset[partition]
        self.next_offset[partition] += len(copy.values)
        if copy.ended:
            fold.states.terminal.add(copy.key.decode(), copy.head)
            fold.states.events += len(copy.values)
        else:
            fold.feed(StoredRecord(first + i, copy.key, value)
                      for i, value in enumerate(copy.values))

    def states(self, ends: dict[int, int]) -> dict[int, PartitionStates]:
        counted = dict(enumerate(self.next_offset))
        if ends != counted:
            raise RuntimeError(f"the broker's end offsets {ends} are not the records counted "
                               f"{counted} (a retried batch?): fold instead")
        folded = {}
        for partition, fold in enumerate(self.folds):
            states = fold.folded().states
            states.end = states.folded_end = ends[partition]
            folded[partition] = states
        return folded


async def fill(settings: Settings, events: int, open_orders: int, seed: int,
               folded: FoldedByFill | None = None) -> dict[str, int]:
    """Append `events` events (whole histories, each in its order's partition), a batch per
    partition at a time: copies of `TEMPLATES` histories under new ids (see `Template`),
    about `open_orders` of them open; each told to `folded` too."""
    ended, header = templates(histories(seed), TEMPLATES)
    still_open, _ = templates(open_histories(seed), OPEN_TEMPLATES)
    per_order = sum(len(t.events) for t in ended) / len(ended)
    open_share = min(1.0, open_orders * per_order / max(events, 1))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks=1,
                                max_batch_size=BATCH_BYTES, max_request_size=4 * BATCH_BYTES)
    await producer.start()
    written = orders = opened = 0
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

        for copy in copies(ended, still_open, open_share, header, seed):
            key = copy.key
            partition = zlib.crc32(key) % PARTITIONS
            for value in copy.values:
                if batches[partition].append(key=key, value=value, timestamp=None) is None:
                    await flush(partition)
                    batches[partition].append(key=key, value=value, timestamp=None)
            if folded is not None:
                folded.add(partition, copy)
            written, orders = written + len(copy.values), orders + 1
            opened += not copy.ended
            if written >= events:
                break
        for partition in range(PARTITIONS):
            if batches[partition].record_count():
                await flush(partition)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {"events": written, "orders": orders, "open": opened}


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
        seconds, ready_cpu = time.monotonic() - started, time.process_time() - cpu
        await states.settled()  # the snapshots' orders in flight, restored behind
        restored, cpu = time.monotonic() - started, time.process_time() - cpu
        gc.collect()
        report: dict[str, Any] = {
            "snapshots": snapshots, "takeover_s": round(seconds, 2),
            "takeover_cpu_s": round(ready_cpu, 2), "restored_s": round(restored, 2),
            "restored_cpu_s": round(cpu, 2),
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


async def write_snapshots(settings: Settings, folded: FoldedByFill) -> dict[str, Any]:
    """Each partition's snapshot of the states the fill built, as the worker writes it."""
    bootstrap = str(settings.kafka_bootstrap_servers)
    reader = EventStoreReader(bootstrap, settings.topics.events)
    states = folded.states(await reader.end_offsets(list(range(PARTITIONS))))
    codec = Codec.load()
    store = SnapshotStore(bootstrap, settings.topics.snapshots,
                          registered_snapshot_codec(settings), settings.snapshot_max_bytes)
    try:
        writer = SnapshotWriter(lambda: states, store,
                                lambda e, s: codec.encode_event(e, status=s), "bench",
                                every_events=1, interval_s=3600)
        began = time.monotonic()
        written = await writer.write_due()
        return {"snapshots_written": written,
                "snapshot_write_s": round(time.monotonic() - began, 2),
                "snapshot_bytes": sum(writer.sizes.values()),
                "open": sum(len(s.orders) for s in states.values()),
                "ended": sum(len(s.terminal) for s in states.values())}
    finally:
        await store.close()


def run_all(events: int, tail: int, open_orders: int, whole: bool,
            seed: int = 11) -> dict[str, Any]:
    from bench.projection_bench import fresh, services

    with services() as base:
        settings = fresh(base).model_copy(update={"partitions": PARTITIONS})
        asyncio.run(ensure_topics(settings, str(settings.kafka_bootstrap_servers)))
        began, folded = time.monotonic(), FoldedByFill()
        filled: dict[str, float] = {**asyncio.run(fill(settings, events, open_orders, seed,
                                                       folded))}
        filled["fill_s"] = round(time.monotonic() - began, 1)
        filled["fill_events_per_s"] = round(filled["events"] / max(filled["fill_s"], 0.1))
        snapshots = asyncio.run(write_snapshots(settings, folded))
        report: dict[str, Any] = {"history": filled, "snapshots": snapshots}
        if whole:
            report["without_snapshots"] = fold = _measure_in_child(settings, snapshots=False,
                                                                   write=False)
            if (fold["in_flight"], fold["ended"]) != (snapshots["open"], snapshots["ended"]):
                raise RuntimeError(f"the whole fold ({fold}) does not reach the states the "
                                   f"fill built ({snapshots})")
        report["tail"] = asyncio.run(fill(settings, tail, open_orders * tail // events, seed + 1))
        report["with_snapshots"] = _measure_in_child(settings, snapshots=True, write=False)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench recovery")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=10_000,
                        help="orders open (waiting or in flight) in the history")
    parser.add_argument("--tail", type=int, default=10_000,
                        help="events appended after the snapshots")
    parser.add_argument("--whole", action=argparse.BooleanOptionalAction, default=None,
                        help="also fold every partition whole (default: up to 1 M events)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        report = asyncio.run(takeover(Settings(**spec["settings"]), spec["snapshots"],
                                      spec["write"]))
        print(json.dumps(report))
        return 0
    whole = args.events <= 1_000_000 if args.whole is None else args.whole
    print(json.dumps(run_all(args.events, args.tail, args.open, whole), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
