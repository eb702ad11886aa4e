"""The engine's processes as a fault injector sees them: `oee <command>` children it can signal.

Consumes a Settings (handed over only as environment variables, `Settings.as_environment()`,
exactly as `oee run` configures its children) and a command of the `oee` CLI (`worker`, `api`,
`projector`, `topics create`, `db migrate`). Produces running processes, each in its own
session so that a signal reaches the whole process group, with output appended to a log under
test-artifacts/. Nothing here knows the engine's internals: only its CLI and its settings.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from oee.settings import Settings

ARTIFACTS = Path(__file__).parent.parent.parent / "test-artifacts"
OEE = (sys.executable, "-m", "oee.cli")
CLI_TIMEOUT_S = 180.0  # a one-shot command (topics, migrations) on a loaded machine


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1"}


def run_cli(settings: Settings, *args: str) -> str:
    """Run a one-shot `oee` command to completion; its output, or an AssertionError saying why."""
    result = subprocess.run([*OEE, *args], env=environment(settings), capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"oee {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def free_port() -> int:
    """A loopback port nothing listens on now (the API binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OeeProcess:
    """One long-running `oee <command>` child: start, SIGKILL, SIGSTOP/SIGCONT, stop."""

    def __init__(self, settings: Settings, command: str, name: str) -> None:
        self.settings = settings
        self.command = command
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # Its own working directory: Faust keeps a data directory in the current one.
        self._cwd = Path(tempfile.mkdtemp(prefix=f"oee-chaos-{name}-"))

    @property
    def log_path(self) -> Path:
        return ARTIFACTS / f"{self.settings.engine_id}-chaos-{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> OeeProcess:
        assert not self.alive, f"{self.name} is already running"
        ARTIFACTS.mkdir(exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} of oee {self.command} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen([*OEE, self.command], env=environment(self.settings),
                                         cwd=self._cwd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the process group (only ever ours: it was started here)."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash looks like to Kafka and PostgreSQL."""
        if self.alive:
            self.signal(signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=30)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, then SIGKILL."""
        if not self.alive:
            return
        self.resume()
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
