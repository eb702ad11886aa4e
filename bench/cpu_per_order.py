"""CPU per order of every process, variants side by side: where an order's cost goes.

Each run starts a fresh throwaway `Stack` (zero venue latency) with one variant's settings,
warms it up (`--warm-up`, 200 orders: group joins, first folds), then runs the closed loop of
`python -m bench orders` (`--clients` concurrent clients, `--orders` orders) and reads
utime+stime of every process of the tree before and after it (`bench.proc_cpu`: broker JVM, worker,
projector, API, PostgreSQL with its backends, registry, this process as the load client).
Variants are interleaved (A, B, A, B, ...) so that a drift of the machine hits all of them;
reported per run and as medians: orders/s, POST p99 and CPU milliseconds per order by role;
per run also the resident memory (MiB) of each role at its end, and per order the records
appended per topic, the broker's requests by type and PostgreSQL's transactions
(`bench.pipeline_counts`).

`python -m bench.cpu_per_order --rounds 2 --orders 800 [--follow] [--variant
NAME:SETTING=VALUE,...]` (no --variant: the defaults alone; --follow: each client waits for
its order's end, not only its POST, before the next). Runs several minutes; JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from typing import Any

from bench.orders_bench import ZERO_LATENCY, one_run
from bench.pipeline_counts import PipelineCounter, per_order
from bench.proc_cpu import by_role, pids_of, rss_mb_by_role, tree
from bench.stack import Stack, free_ports, settings_overrides
from infra.kafka import KafkaBroker
from infra.services import local_broker

WARM_UP = 200


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:SETTING=VALUE,...` -> (NAME, settings overrides, validated and typed)."""
    name, _, assignments = text.partition(":")
    return name, settings_overrides(filter(None, assignments.split(",")))


def one_variant(overrides: dict[str, Any], orders: int, clients: int,
                warm_up: int = WARM_UP, mode: str = "closed") -> dict[str, Any]:
    root = os.getpid()
    with Stack({**ZERO_LATENCY, "log_level": "WARNING", **overrides}) as stack:
        asyncio.run(one_run(stack, "closed", warm_up, 16, 0, max(120, warm_up / 5)))
        counter = _counter(stack, root)
        counted = counter.snapshot()  # its JVM tool runs outside the CPU window
        before = tree(root)
        result = asyncio.run(one_run(stack, mode, orders, clients, 0, 300))
        spent = by_role(before, tree(root), root)
        resident = rss_mb_by_role(root)  # at the end of the run, the stack still up
        now = counter.snapshot()
    finished = max(result["finished"], 1)
    per_order_cpu = {role: round(1000 * seconds / finished, 2) for role, seconds in spent.items()}
    per_order_cpu["total"] = round(sum(per_order_cpu.values()), 2)
    return {"orders_per_s": result["orders_per_s"], "finished": result["finished"],
            "post_p99_ms": result["post_p99_ms"], "cpu_ms_per_order": per_order_cpu,
            "rss_mb": resident,
            "records_per_order": per_order(counted.records, now.records, finished),
            "requests_per_order": per_order(counted.requests, now.requests, finished),
            "pg_transactions_per_order": round(
                (now.transactions - counted.transactions) / finished, 2)}


def _counter(stack: Stack, root: int) -> PipelineCounter:
    settings = stack.settings
    broker = local_broker(settings)
    assert isinstance(broker, KafkaBroker), "one local broker: its JMX counts are the cluster's"
    [broker_pid] = pids_of(tree(root).values(), "broker", root)
    return PipelineCounter(settings.kafka_bootstrap_servers or "", settings.database_url or "",
                           broker_pid, broker.libs_dir, free_ports(1)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_per_order")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--orders", type=int, default=800)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--warm-up", type=int, default=WARM_UP,
                        help="orders before the measured window (a JIT's steady state needs more)")
    parser.add_argument("--variant", action="append", default=[],
                        metavar="NAME:SETTING=VALUE,...")
    parser.add_argument("--follow", action="store_true",
                        help="each client sends its next order once the last one ended "
                        "(default: once its POST was answered, which floods the pipeline)")
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in args.variant] or [("defaults", {})]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for round_ in range(args.rounds):
        for name, overrides in variants:
            result = one_variant(overrides, args.orders, args.clients, args.warm_up,
                                 "follow" if args.follow else "closed")
            runs[name].append(result)
            print(json.dumps({"variant": name, "round": round_, **result}), file=sys.stderr,
                  flush=True)  # each run as it comes: a crash later loses none
    report = {name: {"median_orders_per_s": statistics.median(r["orders_per_s"] for r in rs),
                     "median_cpu_ms_per_order": {
                         role: statistics.median(r["cpu_ms_per_order"].get(role, 0.0)
                                                 for r in rs)
                         for role in rs[0]["cpu_ms_per_order"]},
                     "runs": rs}
              for name, rs in runs.items()}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
