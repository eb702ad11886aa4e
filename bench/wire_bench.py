"""`python bench/wire_bench.py [--framing ids|legacy]`: CPU per record of the event codec.

Encodes and decodes a realistic mix of order events (bench.order_histories) and reports the
CPU microseconds per record (process time, so other processes' load counts less) of encode
and of decode, as the median of several rounds; JSON on stdout. `--framing ids` frames with
registry ids (the ids are given, no registry is asked: only the codec is measured); `legacy`
writes the older 0x0E header. Runs on any revision of the codec (by path, with that revision
first on PYTHONPATH), so one revision can be compared with another.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from bench.order_histories import HistoryMaker, interleaved
from domain.orders.evolve import recorded_statuses
from schemas.codec import Codec


def codec_of(framing: str) -> Codec:
    if framing == "legacy":
        return Codec.load()
    from schemas.codec import load_histories

    ids = {history.name: {v: 1000 + 10 * n + v for v in history.versions}
           for n, history in enumerate(load_histories())}
    return Codec.load(ids=ids)


def round_us(codec: Codec, events: list[Any], statuses: list[Any]) -> tuple[float, float]:
    """CPU microseconds per record: (encode, decode)."""
    started = time.process_time()
    encoded = [codec.encode_event(e, status=s) for e, s in zip(events, statuses, strict=True)]
    encoding = time.process_time() - started
    started = time.process_time()
    for data in encoded:
        codec.decode_envelope(data)
    decoding = time.process_time() - started
    return encoding / len(events) * 1e6, decoding / len(events) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wire_bench")
    parser.add_argument("--framing", choices=("ids", "legacy"), default="ids")
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    events = interleaved(HistoryMaker(seed=2025).orders(args.orders))
    statuses = _statuses(events)
    codec = codec_of(args.framing)
    round_us(codec, events[:1000], statuses[:1000])  # warm-up
    rounds = [round_us(codec, events, statuses) for _ in range(args.rounds)]
    json.dump({"framing": args.framing, "records": len(events),
               "encode_us": round(statistics.median(r[0] for r in rounds), 3),
               "decode_us": round(statistics.median(r[1] for r in rounds), 3),
               "rounds": [[round(e, 3), round(d, 3)] for e, d in rounds]}, sys.stdout)
    print()
    return 0


def _statuses(events: list[Any]) -> list[Any]:
    """Each event's status after it, per order (the writer's fold)."""
    by_order: dict[str, list[Any]] = {}
    for event in events:
        by_order.setdefault(event.order_id, []).append(event)
    after = {id(e): s for history in by_order.values()
             for e, s in zip(history, recorded_statuses(history), strict=True)}
    return [after[id(event)] for event in events]


if __name__ == "__main__":
    sys.exit(main())
