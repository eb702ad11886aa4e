"""What API keys cost a POST: throughput with AUTH_MODE=on next to AUTH_MODE=off.

One stack (worker, projector, an API with auth on), plus a second API process on the same
Kafka and PostgreSQL with AUTH_MODE=off. Runs alternate A (on), B (off), A, B, ... so drift
of the shared machine hits both sides alike; each run is a closed loop of C clients posting
N orders with a fresh clientOrderId each (so every POST also asks the read model whether
the key was used before). Reported: POSTs/s and POST latency per run, the medians per side,
and the ratio on/off.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.http_client import ConnectionPool
from bench.orders_bench import ZERO_LATENCY, Run, closed_loop, pct
from bench.stack import Stack, free_ports
from oee.settings import AuthMode


async def post_run(host: str, port: int, headers: dict[str, str], orders: int,
                   clients: int) -> dict[str, Any]:
    run = Run()
    async with ConnectionPool(host, port, clients, headers) as client:
        started = time.monotonic()
        await closed_loop(client, run, orders, clients)
        took = time.monotonic() - started
    return {"posts": len(run.posted_at), "posts_per_s": round(len(run.posted_at) / took, 1),
            "post_p50_ms": pct(run.post_ms, 50), "post_p99_ms": pct(run.post_ms, 99)}


def run_all(quick: bool = False) -> dict[str, Any]:
    pairs, orders, clients = (2, 300, 32) if quick else (4, 1500, 32)
    with Stack({**ZERO_LATENCY, "log_level": "WARNING"}) as stack:
        settings = stack.settings
        (off_port,) = free_ports(1)
        stack.spawn_api({"auth_mode": AuthMode.OFF, "api_port": off_port})
        sides = {"on": (settings.api_port, stack.auth_headers), "off": (off_port, {})}
        for port, headers in sides.values():  # warm-up of both processes
            asyncio.run(post_run(settings.api_host, port, headers, 200, clients))
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        for _ in range(pairs):
            for side, (port, headers) in sides.items():  # A, B, A, B, ...
                runs[side].append(asyncio.run(
                    post_run(settings.api_host, port, headers, orders, clients)))
    medians = {side: statistics.median(r["posts_per_s"] for r in found)
               for side, found in runs.items()}
    p50 = {side: statistics.median(r["post_p50_ms"] for r in found)
           for side, found in runs.items()}
    return {"orders_per_run": orders, "clients": clients, "order": "on, off, on, off, ...",
            "median_posts_per_s": medians, "median_post_p50_ms": p50,
            "ratio_on_off": round(medians["on"] / medians["off"], 3), "runs": runs}
