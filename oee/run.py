"""`oee run` (what `make run` calls): the whole system in the foreground, supervised.

Starts (or reuses) Kafka, PostgreSQL and the schema registry, applies migrations, creates
topics, then runs the application processes as children: stream worker, projector, API and
the market-data feed.
A child that exits is started again after a backoff (RUN_RESTART_BACKOFF_MS, doubling with
each restart of that child in the last minute); a child that needs more than RUN_MAX_RESTARTS
restarts within a minute is crash-looping, and then everything stops (exit 1). Ctrl-C,
SIGTERM or SIGHUP stops every process it started, in reverse order, and leaves none behind
(exit 0). Data lives in DATA_DIR, so a second run finds the first one's orders. With
AUTH_MODE=on (the default) it prints a ready-to-use local admin key, kept in
DATA_DIR/admin.key, so a second run prints the same one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field

from infra import process
from infra.schema_registry import schema_registry
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.keys import ADMIN_KEY_FILE, local_admin_key
from oee.settings import AuthMode, Settings
from projections.migrate import migrate

# Each application process is `python -m <module>`, configured only by the environment.
PROCESSES: tuple[tuple[str, str], ...] = (
    ("worker", "streams.worker"),
    ("projector", "projections.projector"),
    ("api", "api.server"),
    ("feed", "producers.feed"),
)
WORKER_SLOTS = frozenset(name for name, module in PROCESSES if module == "streams.worker")
WINDOW_S = 60.0  # restarts are counted over the last minute
POLL_S = 0.2  # a supervisor's poll interval, not a synchronisation


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often, and how soon, a child that exited is started again."""

    max_restarts: int  # within WINDOW_S; one more means a crash loop: stop everything
    backoff_s: float  # before the first restart; doubles with each restart in the window

    def delay(self, restarts: deque[float], now: float) -> float | None:
        """Seconds to wait before restarting, or None to give up; forgets old restarts."""
        while restarts and now - restarts[0] > WINDOW_S:
            restarts.popleft()
        if len(restarts) >= self.max_restarts:
            return None
        return self.backoff_s * (1 << len(restarts))


@dataclass
class Child:
    name: str
    module: str
    proc: subprocess.Popen[bytes]
    restarts: deque[float] = field(default_factory=deque)  # when, within the window
    restart_at: float | None = None  # set while it waits out its backoff


def run_system(settings: Settings) -> int:
    with ExitStack() as stack:
        started = time.monotonic()
        bootstrap = stack.enter_context(kafka_bootstrap(settings))
        dsn = stack.enter_context(postgres_dsn(settings))
        registry = stack.enter_context(schema_registry(settings, dsn))
        live = settings.model_copy(update={
            "kafka_bootstrap_servers": bootstrap, "database_url": dsn,
            "schema_registry_url": registry,
            # Fixed for the run (a restarted child serves where it did), so they can be printed.
            "worker_metrics_port": settings.worker_metrics_port or _free_port(),
            "projector_metrics_port": settings.projector_metrics_port or _free_port()})
        migrate(dsn, live.db_schema)
        asyncio.run(ensure_topics(live, bootstrap))
        admin_key = local_admin_key(live, dsn) if live.auth_mode is AuthMode.ON else None
        children = [Child(name, module, _spawn(live, name, module))
                    for name, module in PROCESSES]
        _announce(live, started, admin_key)
        policy = RestartPolicy(settings.run_max_restarts, settings.run_restart_backoff_ms / 1000)
        try:
            return _supervise(live, children, policy)
        finally:
            _stop_all(children)
    return 0


def child_environment(settings: Settings, name: str) -> dict[str, str]:
    """The environment of child `name`: the run's settings, and for a stream worker its
    WORKER_ID (unless one is set): `<host>-<name>`, the same for every restart of the slot, so a
    restarted worker rejoins its group as itself and takes its partitions back at once instead
    of after its dead predecessor's session (static membership, `streams.app`)."""
    if name in WORKER_SLOTS and settings.worker_id is None:
        settings = settings.model_copy(update={"worker_id": f"{socket.gethostname()}-{name}"})
    return {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}


def _spawn(settings: Settings, name: str, module: str) -> subprocess.Popen[bytes]:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings, name)
    return process.spawn([sys.executable, "-m", module], log_path=logs / f"{name}.log",
                         cwd=settings.data_dir, env=env, die_with_parent=True)


def _announce(settings: Settings, started: float, admin_key: str | None) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"oee is up in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  dashboard   {base}/", flush=True)
    print(f"  API docs    {base}/docs", flush=True)
    print(f"  health      {base}/health", flush=True)
    print(f"  metrics     api {base}/metrics", flush=True)
    for name, port in (("worker", settings.worker_metrics_port),
                       ("projector", settings.projector_metrics_port)):
        print(f"              {name} http://127.0.0.1:{port}/metrics (and /health)", flush=True)
    print(f"  kafka       {settings.kafka_bootstrap_servers}", flush=True)
    print(f"  postgres    {settings.database_url}", flush=True)
    print(f"  registry    {settings.schema_registry_url}", flush=True)
    print(f"  logs        {settings.data_dir / 'logs'}", flush=True)
    if admin_key is None:
        print("  auth        off (AUTH_MODE=off): no API key needed", flush=True)
    else:
        print(f"  admin key   {admin_key}", flush=True)
        print(f"              (also in {settings.data_dir / ADMIN_KEY_FILE}; the dashboard "
              "asks for it once)", flush=True)
    print("Ctrl-C stops everything.", flush=True)


def _free_port() -> int:
    """A loopback port free now (the child binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _supervise(settings: Settings, children: list[Child], policy: RestartPolicy) -> int:
    """Restart children that exit until a signal (exit 0) or a crash loop (exit 1)."""
    stop = {"signal": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = True

    # Installed explicitly: a shell that starts us in the background hands SIGINT down as
    # ignored, and Python would then never raise KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while not stop["signal"]:
        for child in children:
            if not _tend(settings, child, policy, time.monotonic()):
                return 1
        time.sleep(POLL_S)
    return 0


def _tend(settings: Settings, child: Child, policy: RestartPolicy, now: float) -> bool:
    """Notice an exit, schedule or perform a restart; False when the child crash-loops."""
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.proc = _spawn(settings, child.name, child.module)
            child.restarts.append(now)
            child.restart_at = None
            _say(f"{child.name} restarted (pid {child.proc.pid})")
        return True
    code = child.proc.poll()
    if code is None:
        return True
    delay = policy.delay(child.restarts, now)
    if delay is None:
        _say(f"{child.name} (pid {child.proc.pid}) exited with {code} after {policy.max_restarts} "
             f"restarts within {WINDOW_S:.0f}s; stopping everything (see its log)")
        return False
    child.restart_at = now + delay
    _say(f"{child.name} (pid {child.proc.pid}) exited with {code}; restarting in {delay:.1f}s "
         f"(restart {len(child.restarts) + 1} of at most {policy.max_restarts} "
         f"per {WINDOW_S:.0f}s)")
    return True


def _say(message: str) -> None:
    print(f"oee: {message}", file=sys.stderr, flush=True)


def _stop_all(children: list[Child]) -> None:
    print("stopping...", flush=True)
    for child in reversed(children):
        process.terminate(child.proc.pid, timeout_s=15, child=child.proc)
