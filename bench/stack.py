"""A throwaway copy of the whole system for one benchmark run.

Its own Kafka and PostgreSQL (temporary data, free ports), topics and schema, then the same
application processes `oee run` starts, each configured only by environment variables. Used
as `with Stack(overrides) as stack: ...`; everything is stopped and deleted afterwards.
With AUTH_MODE=on (the default) the stack makes an admin key (`api_key`, `auth_headers`) and
sets the per-key rate limit out of the way unless the overrides set it: a benchmark measures
the engine, not the limiter's refusals.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from api.auth.keys import Scope
from api.auth.secret import server_secret
from api.auth.store import create_key
from infra import process
from infra.schema_registry import schema_registry
from infra.services import kafka_bootstrap, postgres_dsn
from infra.topics import ensure_topics
from oee.settings import AuthMode, Settings
from projections.migrate import migrate


def settings_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """`SETTING=VALUE` items (any case) -> a `Stack`'s overrides, validated and typed."""
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, _, value = item.partition("=")
        key = key.strip().lower()
        overrides[key] = getattr(Settings(**{key: value}), key)
    return overrides


def free_ports(count: int) -> list[int]:
    import random

    ports = [p for p in random.sample(range(40000, 50000), 200) if process.port_is_free(p)]
    return ports[:count]


class Stack:
    def __init__(self, overrides: dict[str, Any], processes: tuple[str, ...] = (
            "streams.worker", "projections.projector", "api.server")) -> None:
        self._overrides = overrides
        self._modules = processes
        self._exit = ExitStack()
        self._children: list[subprocess.Popen[bytes]] = []
        self.settings: Settings
        self.api_key: str | None = None

    def __enter__(self) -> Stack:
        data = Path(tempfile.mkdtemp(prefix="oee-bench-"))
        data.chmod(0o755)
        self._exit.callback(shutil.rmtree, data, True)
        kafka_port, controller_port, pg_port, api_port, registry_port = free_ports(5)
        base = Settings().model_copy(update={
            "kafka_port": kafka_port, "kafka_controller_port": controller_port,
            "postgres_port": pg_port, "data_dir": data, "api_port": api_port,
            "schema_registry_port": registry_port,
            "engine_id": f"bench-{uuid.uuid4().hex[:8]}", "rate_limit_per_s": 1e9,
            "rate_limit_burst": 1_000_000_000, **self._overrides})
        bootstrap = self._exit.enter_context(kafka_bootstrap(base))
        dsn = self._exit.enter_context(postgres_dsn(base, durable=False))
        registry = self._exit.enter_context(schema_registry(base, dsn))
        self.settings = base.model_copy(update={"kafka_bootstrap_servers": bootstrap,
                                                "database_url": dsn,
                                                "schema_registry_url": registry})
        migrate(dsn, self.settings.db_schema)
        if self.settings.auth_mode is AuthMode.ON:
            self.api_key = create_key(dsn, self.settings.db_schema, server_secret(self.settings),
                                      "bench", Scope.ADMIN).text
        asyncio.run(ensure_topics(self.settings, bootstrap))
        for module in self._modules:
            self._children.append(self._spawn(module, data))
        if "api.server" in self._modules:
            self._wait_for_api()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for child in reversed(self._children):
            process.terminate(child.pid, timeout_s=15, child=child)
        self._exit.close()

    @property
    def auth_headers(self) -> dict[str, str]:
        return {} if self.api_key is None else {"Authorization": f"Bearer {self.api_key}"}

    def spawn_api(self, overrides: dict[str, Any]) -> None:
        """One more API process, with settings of its own (another port, AUTH_MODE...)."""
        settings = self.settings.model_copy(update=overrides)
        env = {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}
        log = Path(self.settings.data_dir) / f"api-{settings.api_port}.log"
        self._children.append(process.spawn([sys.executable, "-m", "api.server"], log_path=log,
                                            cwd=Path.cwd(), env=env, die_with_parent=True))
        self._wait_for_api(url=f"http://{settings.api_host}:{settings.api_port}")

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def _spawn(self, module: str, data: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.settings.as_environment(), "PYTHONUNBUFFERED": "1"}
        return process.spawn([sys.executable, "-m", module], log_path=data / f"{module}.log",
                             cwd=Path.cwd(), env=env, die_with_parent=True)

    def _wait_for_api(self, timeout_s: float = 60, url: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url or self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling a starting server; the deadline bounds it
        raise RuntimeError(f"API did not answer /health within {timeout_s}s")
