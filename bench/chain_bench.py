"""`python -m bench.chain_bench`: the writer's extra CPU per event for the hash chain.

Encodes a realistic mix of order events (bench.order_histories) as the writer does, without
the chain (`encode_event`) and chained to each order's head (`encode_chained_event`: one
encode, SHA-256, the hashes spliced into the tail), and checks them as `oee replay --verify`
does (`chain_link`: decode with the writer's schema and encode again, then `ChainCheck`).
Reports CPU microseconds per event (process time), the median of several rounds, as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.order_histories import HistoryMaker, interleaved
from bench.wire_bench import _statuses, codec_of
from schemas.chain import GENESIS, ChainCheck
from schemas.codec import Codec


def per_event_us(run: Callable[[], object], count: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / count * 1e6


def plain(codec: Codec, events: list[Any], statuses: list[Any]) -> list[bytes]:
    return [codec.encode_event(e, status=s) for e, s in zip(events, statuses, strict=True)]


def chained(codec: Codec, events: list[Any], statuses: list[Any]) -> list[bytes]:
    heads: dict[str, bytes] = {}
    out = []
    for event, status in zip(events, statuses, strict=True):
        value, heads[event.order_id] = codec.encode_chained_event(
            event, status=status, prev_hash=heads.get(event.order_id, GENESIS))
        out.append(value)
    return out


def verify(codec: Codec, records: list[bytes]) -> ChainCheck:
    chain = ChainCheck()
    for offset, value in enumerate(records):
        event = codec.decode_event(value)
        chain.add(event.order_id, event.seq, codec.chain_link(value), "orders.events", 0, offset)
    assert not chain.broken
    return chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chain_bench")
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    events = interleaved(HistoryMaker(seed=2025).orders(args.orders))
    statuses = _statuses(events)
    codec = codec_of("ids")
    n = len(events)
    records = chained(codec, events, statuses)
    decode_only = lambda: [codec.decode_event(v) for v in records]  # noqa: E731
    rounds = [(per_event_us(lambda: plain(codec, events, statuses), n),
               per_event_us(lambda: chained(codec, events, statuses), n),
               per_event_us(lambda: verify(codec, records), n),
               per_event_us(decode_only, n)) for _ in range(args.rounds)]
    median = [statistics.median(r[i] for r in rounds) for i in range(4)]
    json.dump({"events": n, "encode_us": round(median[0], 2),
               "chained_encode_us": round(median[1], 2),
               "writer_extra_us": round(median[1] - median[0], 2),
               "writer_extra_pct": round((median[1] / median[0] - 1) * 100, 1),
               "verify_us": round(median[2], 2), "decode_us": round(median[3], 2)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
