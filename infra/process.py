"""Supervision of the local service processes (Kafka broker, PostgreSQL server).

Starts a server as a child in its own session (so a terminal's Ctrl-C or hang-up does not
reach it and `killpg` stops everything it spawned), records its pid in a pid file so another
process (`oee infra down`) can stop it, and stops it with a polite signal, escalating to
SIGKILL after a deadline. Linux only, like the rest of the launcher.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.errors import PrerequisiteError

_PR_SET_PDEATHSIG = 1
POLL_INTERVAL_S = 0.1


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (so a server could bind it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the JVM and postgres set, so a just-closed socket in TIME_WAIT does not
        # count as taken, while a live listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
    return True


def require_free_port(port: int, *, what: str, setting: str) -> None:
    """Fail with a clear message when something already listens on 127.0.0.1:port."""
    if not port_is_free(port):
        raise PrerequisiteError(
            f"port {port} on 127.0.0.1 is already in use, so {what} cannot start there: "
            f"stop whatever listens on it (`oee infra down` if it is ours) or set "
            f"{setting} to a free port"
        )


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _child_setup(uid: int | None, gid: int | None, die_with_parent: bool) -> Callable[[], None]:
    """The pre-exec hook: drop privileges, then ask the kernel to SIGTERM us if the parent dies.

    The parent-death signal is reset by a credential change, so it is armed after setuid. The
    kernel sends it when the spawning *thread* exits: spawn from a thread that lives as long
    as the service should.
    """
    parent = os.getpid()

    def setup() -> None:
        if gid is not None and uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        if die_with_parent:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    run_as: str | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a server process in its own session, its output appended to `log_path`.

    `die_with_parent` ties the server's life to this process (tests: a killed pytest leaves no
    broker behind holding the ports); detached services (`oee infra up`) leave it off.
    """
    uid = gid = None
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        uid, gid = entry.pw_uid, entry.pw_gid
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_child_setup(uid, gid, die_with_parent),
        )


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of `pid` ('' if it is gone), to check a pid file is not stale."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def read_pid(pid_file: Path, *, marker: str) -> int | None:
    """The pid recorded in `pid_file` if that process still runs and is the expected one.

    `marker` is a string its command line must contain: after a reboot the pid may belong to
    an unrelated process, which must never be signalled.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if is_alive(pid) and marker in cmdline(pid):
        return pid
    return None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.write_text(f"{pid}\n")


def terminate(
    pid: int,
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout_s: float = 30.0,
    child: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop the process group led by `pid`: `sig`, then SIGKILL once `timeout_s` has passed."""
    signal_group(pid, sig)
    if _wait_gone(pid, timeout_s, child):
        return
    signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0, child)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid`, if it is still there."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout_s: float, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:  # our own child: wait() also reaps it
        try:
            child.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True
