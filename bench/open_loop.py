"""`python -m bench.open_loop --rate 10 --orders 200 [--set NAME=VALUE ...]`: latency below
saturation.

`make bench`'s open-loop scenario runs at 50 orders/s, more than this 2-core machine completes,
so its latencies are mostly queueing. This one places orders at `--rate` (zero venue latency,
a fresh `Stack` warmed up with 200 orders), each measured from its intended send time, and
prints the run's summary as one JSON object: POST and POST→terminal percentiles. For an A/B of
two checkouts, run it in each alternately.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.orders_bench import ZERO_LATENCY, scenario
from bench.stack import settings_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.open_loop")
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = settings_overrides(args.set)
    report: dict[str, Any] = scenario(
        "open-loop", {**ZERO_LATENCY, "log_level": "WARNING", **overrides}, "open",
        args.orders, 50, args.rate, 1, 60)
    json.dump(report["median"], sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
