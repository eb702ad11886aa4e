"""`oee run` (what `make run` calls): the whole system in the foreground.

Starts (or reuses) Kafka and PostgreSQL, applies migrations, creates topics, then runs the
application processes as children: stream worker, projector, API and the market-data feed.
Ctrl-C (or any child dying) stops every process it started, in reverse order, and leaves none
behind. Data lives in DATA_DIR, so a second run finds the first one's orders.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

from infra import process
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.settings import Settings
from projections.migrate import migrate

# Each application process is `python -m <module>`, configured only by the environment.
PROCESSES: tuple[tuple[str, str], ...] = (
    ("worker", "streams.worker"),
    ("projector", "projections.projector"),
    ("api", "api.server"),
    ("feed", "producers.feed"),
)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


def run_system(settings: Settings) -> int:
    with ExitStack() as stack:
        started = time.monotonic()
        bootstrap = stack.enter_context(kafka_bootstrap(settings))
        dsn = stack.enter_context(postgres_dsn(settings))
        live = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap,
                                           "database_url": dsn})
        migrate(dsn, live.db_schema)
        asyncio.run(ensure_topics(live, bootstrap))
        children = [_spawn(live, name, module) for name, module in PROCESSES]
        _announce(live, started)
        try:
            return _supervise(children)
        finally:
            _stop_all(children)
    return 0


def _spawn(settings: Settings, name: str, module: str) -> Child:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}
    proc = process.spawn([sys.executable, "-m", module], log_path=logs / f"{name}.log",
                         cwd=settings.data_dir, env=env, die_with_parent=True)
    return Child(name, proc)


def _announce(settings: Settings, started: float) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"oee is up in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  dashboard   {base}/", flush=True)
    print(f"  API docs    {base}/docs", flush=True)
    print(f"  health      {base}/health", flush=True)
    print(f"  kafka       {settings.kafka_bootstrap_servers}", flush=True)
    print(f"  postgres    {settings.database_url}", flush=True)
    print(f"  logs        {settings.data_dir / 'logs'}", flush=True)
    print("Ctrl-C stops everything.", flush=True)


def _supervise(children: list[Child]) -> int:
    """Block until Ctrl-C/SIGTERM/SIGHUP (exit 0) or until a child dies (exit 1)."""
    stop = {"signal": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = True

    # Installed explicitly: a shell that starts us in the background hands SIGINT down as
    # ignored, and Python would then never raise KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while not stop["signal"]:
        for child in children:
            if child.proc.poll() is not None:
                print(f"oee: {child.name} exited with {child.proc.returncode}; "
                      "stopping everything (see its log)", file=sys.stderr, flush=True)
                return 1
        time.sleep(0.5)  # a supervisor's poll interval, not a synchronisation
    return 0


def _stop_all(children: list[Child]) -> None:
    print("stopping...", flush=True)
    for child in reversed(children):
        process.terminate(child.proc.pid, timeout_s=15, child=child.proc)
