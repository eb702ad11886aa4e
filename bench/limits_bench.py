"""Conditional-order benchmark: `python -m bench.limits_bench [--quick] [--skip-e2e]`, JSON
on stdout; `run_all(quick)` is the entry `python -m bench` can call.

- `book` (in-process, `bench.limits_book`): 100,000 waiting limit orders over 20 pairs (the
  default market's 9 plus 11 synthetic tokens listed against USDC), a seeded random walk of
  ticks: ticks/s sustained and tick -> triggered latency p50/p99, median of 3 runs.
- `end_to_end` (`bench.limits_e2e`): one throwaway stack (Kafka, PostgreSQL, one worker),
  10,000 waiting limit orders; 3 rounds of a tick crossing 100 of them and a listing firing
  20 snipers: tick -> OrderTriggered / TransactionSubmitted and listing -> submitted, p50/p99.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench import limits_book, limits_e2e


def run_all(quick: bool = False, end_to_end: bool = True) -> dict[str, Any]:
    runs = 1 if quick else 3
    report: dict[str, Any] = {
        "book": limits_book.run(orders_total=20_000 if quick else 100_000,
                                ticks=300 if quick else 2_000, runs=runs),
    }
    if end_to_end:
        report["end_to_end"] = limits_e2e.run(waiting=1_000 if quick else 10_000,
                                              crossing=100, snipers=20, rounds=runs)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits_bench")
    parser.add_argument("--quick", action="store_true", help="1 run each, smaller N")
    parser.add_argument("--skip-e2e", action="store_true", help="only the in-process book")
    args = parser.parse_args(argv)
    report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "limits": run_all(quick=args.quick, end_to_end=not args.skip_e2e)}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
