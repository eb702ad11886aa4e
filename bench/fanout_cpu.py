"""CPU per event of the API's live fan-out, in process: no Kafka, no sockets, no clock noise.

Feeds N encoded `orders.events` records (valid histories from the pure aggregate, with the
headers the worker's outbox puts on them) through `Fanout._publish`, the per-record path of
the fan-out's loop, and reports the process CPU time (time.process_time: utime+stime of this
process) per event, for three audiences: nobody subscribed, one per-order stream on 1 % of
the orders, one all-orders stream. Medians of `--runs`. JSON on stdout.

A/B: run the same file against another tree with PYTHONPATH=<tree>.
`python -m bench.fanout_cpu --events 50000 --runs 5`
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Any

from aiokafka.structs import ConsumerRecord

from api.live.config import LiveConfig
from api.live.fanout import Fanout
from bench.order_histories import HistoryMaker, interleaved
from infra.fetch_pacing import FetchPacing
from oee.settings import Settings
from domain.orders.evolve import recorded_statuses
from schemas import headers
from schemas.codec import Codec


def records(events: int) -> list[ConsumerRecord[bytes, bytes]]:
    codec, made = Codec.load(), []
    history = interleaved(HistoryMaker(seed=5).orders(events // 6 + 1))[:events]
    for offset, (event, status) in enumerate(
            zip(history, recorded_statuses(history), strict=True)):
        value = codec.encode_event(event, status=status)
        made.append(ConsumerRecord(
            "orders.events", 0, offset, 0, 0, event.order_id.encode(), value, None, 0,
            len(value), tuple(headers.build(event, "/oee/worker"))))
    return made


def cpu_per_event_us(batch: list[ConsumerRecord[bytes, bytes]], audience: str) -> float:
    fanout = Fanout("127.0.0.1:9", "orders.events", Codec.load(), LiveConfig(),
                    FetchPacing.of(Settings()))  # never connects: the fetch is not measured
    with ExitStack() as subscriptions:
        if audience == "all":
            subscriptions.enter_context(fanout.all_feed(lambda message: True))
        elif audience == "some":
            watched = sorted({r.key for r in batch if r.key})[::100]
            for key in watched:
                subscriptions.enter_context(fanout.order_feed(key.decode()))
        started = time.process_time()
        for index, record in enumerate(batch):
            fanout._publish(record)
            if audience != "none" and index % 200 == 0:  # a consumer takes what it is given
                for feeds in (fanout._by_order.values(), [fanout._all]):
                    for group in feeds:
                        for feed in group:
                            feed.drain()
        spent = time.process_time() - started
    return spent / len(batch) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_cpu")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    batch = records(args.events)
    report: dict[str, Any] = {"events": len(batch), "unit": "CPU us per event (this process)"}
    for audience in ("none", "some", "all"):
        runs = [round(cpu_per_event_us(batch, audience), 2) for _ in range(args.runs)]
        report[audience] = {"median": statistics.median(runs), "runs": runs}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
