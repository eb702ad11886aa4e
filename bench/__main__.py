"""`make bench` / `python -m bench [orders|projection|ws|limits|venues|all] [--quick]`: a short
table of the headline figures, then the whole report as JSON, on stdout.
`python -m bench recovery [--events N] [--tail N]`: worker takeover time and memory over a long
event store, without and with snapshots (JSON on stdout; not part of `all`).

Every benchmark starts its own throwaway stack (Kafka, PostgreSQL, engine processes) on free
ports, runs each scenario several times and reports medians next to every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["recovery"]:
        from bench.recovery_bench import main as recovery

        return recovery(arguments[1:])
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="?", default="orders",
                        choices=("orders", "projection", "ws", "limits", "venues", "auth",
                                 "all"))
    parser.add_argument("--quick", action="store_true", help="1 run each, smaller N")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.which in ("orders", "all"):
        from bench.orders_bench import run_all

        report["orders"] = run_all(quick=args.quick)
    if args.which in ("projection", "all"):
        from bench.projection_bench import run_all as projection_bench

        report["projection"] = projection_bench(quick=args.quick)
    if args.which in ("ws", "all"):
        from bench.ws_bench import run_all as ws_bench

        report["ws"] = ws_bench(["--runs", "1"] if args.quick else [])
    if args.which in ("limits", "all"):
        from bench.limits_bench import run_all as limits_bench

        report["limits"] = limits_bench(quick=args.quick)
    if args.which in ("venues", "all"):
        from bench.venue_share import run_all as venue_share

        report["venues"] = venue_share(quick=args.quick)
    if args.which in ("auth", "all"):
        from bench.auth_bench import run_all as auth_bench
        from bench.auth_edge_bench import run_all as auth_edge_bench

        report["auth"] = {"stack": auth_bench(quick=args.quick),
                          "edge_only": auth_edge_bench(quick=args.quick)}
    from bench.summary import table

    print(table(report))
    print()
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
