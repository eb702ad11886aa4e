"""`python -m bench.codec_bench [--against DIR]`: CPU per event of the codec and the fold.

On a realistic mix of order events (bench.order_histories: ~7 per order, every type the
engine writes) it measures the CPU microseconds (process time: the neighbours' load counts
little) per event of
- `decode`: `Codec.decode_envelope`, what every fold pays (the projector, a rebuild's shadow
  workers, a worker taking a partition);
- `evolve`: folding the events into their orders' states (`domain.orders.evolve`);
- `encode`: `Codec.encode_event`, and `chained`: `Codec.encode_chained_event`, what the
  writer pays per event it appends;
each the median of `--rounds` rounds; JSON on stdout.

With `--against DIR` (another checkout of this repository, e.g. `git worktree add /tmp/base
main`) the measurement runs in child processes that alternate between DIR's code and this
checkout's, A,B,A,B (`--pairs` of them), and the report gives both sides' medians and the
ratio this/DIR: how a change of the hot path is judged on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
METRICS = ("decode", "evolve", "encode", "chained")


def measure(orders: int, rounds: int) -> dict[str, float]:
    """Per-event CPU µs of each metric, the median of `rounds` (after one warm-up)."""
    from bench.order_histories import HistoryMaker, interleaved
    from bench.wire_bench import codec_of
    from domain.orders.evolve import evolve, recorded_statuses
    from domain.orders.state import initial_state
    from schemas.chain import GENESIS

    events = interleaved(HistoryMaker(seed=2025).orders(orders))
    statuses = recorded_statuses(events)
    codec = codec_of("ids")
    pairs = list(zip(events, statuses, strict=True))
    records = [codec.encode_event(e, status=s) for e, s in pairs]

    def decode() -> None:
        for data in records:
            codec.decode_envelope(data)

    def fold() -> None:
        states: dict[str, Any] = {}
        for event in events:
            states[event.order_id] = evolve(
                states.get(event.order_id) or initial_state(event.order_id), event)

    def encode() -> None:
        for event, status in pairs:
            codec.encode_event(event, status=status)

    def chained() -> None:
        heads: dict[str, bytes] = {}
        for event, status in pairs:
            _, heads[event.order_id] = codec.encode_chained_event(
                event, status=status, prev_hash=heads.get(event.order_id, GENESIS))

    runs: dict[str, Callable[[], None]] = {"decode": decode, "evolve": fold,
                                           "encode": encode, "chained": chained}
    for run in runs.values():
        run()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.process_time()
            run()
            samples[name].append((time.process_time() - started) / len(events) * 1e6)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def child(tree: Path, orders: int, rounds: int) -> dict[str, float]:
    """`measure` in a child process importing `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(HERE), "--orders", str(orders), "--rounds",
                          str(rounds)], env=env, cwd=tree, check=True, capture_output=True,
                         text=True).stdout
    return dict(json.loads(out)["per_event_us"])


def compare(base: Path, pairs: int, orders: int, rounds: int) -> dict[str, Any]:
    """A,B,A,B: `base` then this checkout, `pairs` times; medians and this/base ratios."""
    sides: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    for _ in range(pairs):
        sides["base"].append(child(base, orders, rounds))
        sides["this"].append(child(ROOT, orders, rounds))
    medians = {side: {m: round(statistics.median(run[m] for run in runs), 2) for m in METRICS}
               for side, runs in sides.items()}
    return {"base": str(base), "per_event_us": medians,
            "ratio_this_to_base": {m: round(medians["this"][m] / medians["base"][m], 3)
                                   for m in METRICS},
            "runs": sides}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_bench")
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout: compare A,B,A,B")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.against is not None:
        report = compare(args.against.resolve(), args.pairs, args.orders, args.rounds)
    else:
        report = {"orders": args.orders, "per_event_us": measure(args.orders, args.rounds)}
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
