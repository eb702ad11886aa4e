"""Idle CPU of the whole stack: Kafka, PostgreSQL, registry, worker, projector, API, no orders.

Starts a throwaway `Stack` (settings overridable with `--set NAME=VALUE`, e.g. the fetch waits
of main for an A/B), lets it settle, then reads utime+stime of every process of the tree at
the start and end of a window. Reports per role the share of one core (CPU s / window s) and
the total, per run, and the medians. JSON on stdout.

`python -m bench.idle_cpu --runs 3 --window 30 [--set STREAM_FETCH_MAX_WAIT_MS=5]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from bench.proc_cpu import by_role, tree
from bench.stack import Stack, settings_overrides
from oee.settings import AuthMode

PROCESSES = ("streams.worker", "projections.projector", "api.server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--bare", action="store_true",
                        help="services only (Kafka, PostgreSQL, registry): the floor")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"auth_mode": AuthMode.OFF, **settings_overrides(args.set)}
    processes = () if args.bare else PROCESSES
    runs = [idle_run(overrides, args.window, args.settle, processes) for _ in range(args.runs)]
    roles = sorted({name for run in runs for name in run})
    report = {"window_s": args.window, "overrides": args.set, "processes": processes,
              "median_core_share": {name: round(statistics.median(r.get(name, 0.0)
                                                                  for r in runs), 4)
                                    for name in roles},
              "runs": runs}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def idle_run(overrides: dict[str, Any], window: float, settle: float,
             processes: tuple[str, ...] = PROCESSES) -> dict[str, float]:
    """Share of one core per role (and `total`) over `window` seconds of an idle stack."""
    root = os.getpid()
    with Stack(overrides, processes):
        time.sleep(settle)  # start-up work (JIT, metadata, first folds) is not idle cost
        before, started = tree(root), time.monotonic()
        time.sleep(window)  # the measured window: nothing runs in this process meanwhile
        after, took = tree(root), time.monotonic() - started
    spent = by_role(before, after, root)
    shares = {name: round(cpu / took, 4) for name, cpu in spent.items()}
    shares["total"] = round(sum(v for k, v in spent.items() if k != "bench") / took, 4)
    return shares


if __name__ == "__main__":
    sys.exit(main())
