"""The short human table `python -m bench` prints before its JSON: the headline figures of
each benchmark that ran, one line each, so a newcomer sees them at a glance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def table(report: dict[str, Any]) -> str:
    return "\n".join(["benchmark                  figure", "-" * 72, *_lines(report)])


def _lines(report: dict[str, Any]) -> Iterator[str]:
    for scenario in report.get("orders", []):
        median = scenario["median"]
        line = (f"orders/{scenario['scenario']:<12}  {median['orders_per_s']:>8} orders/s  "
                f"POST p99 {median['post_p99_ms']} ms  e2e p50/p99 {median['e2e_p50_ms']}/"
                f"{median['e2e_p99_ms']} ms")
        yield line
        resident = scenario["runs"][-1].get("rss_mb") if scenario.get("runs") else None
        if resident:
            yield "  RSS MiB after the run    " + ", ".join(
                f"{name} {mb:.0f}" for name, mb in sorted(resident.items()))
        if "baseline" in scenario:
            limit = scenario["baseline"]
            yield (f"  limit baseline           {limit['median_orders_per_s']:>8} orders/s  "
                   f"engine = {limit['engine_percent']} % of it")
    projection = report.get("projection")
    if projection:
        yield (f"projection/rebuild       {projection['rebuild']['median_events_per_s']:>10} "
               "events/s")
    venues = report.get("venues")
    if venues:
        yield (f"venues (0.5-20 SOL)      lowest venue share {venues['lowest_venue_share']:.0%}"
               f" over {len(venues['runs'])} seeds")
    for name in ("ws", "limits"):
        if name in report:
            yield f"{name:<24} see the JSON below"
