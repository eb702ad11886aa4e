"""A Kafka broker and a PostgreSQL server of a scenario's own, that it may SIGKILL and restart.

The session's services are shared by every test, so a scenario that kills one starts its own
with the project's launchers (infra/kafka.py, infra/postgres.py) in a temporary directory, on
free loopback ports. Produces the service's address, `kill()` (SIGKILL to the server's process
group: the server and everything it forked), `start()` again on the same ports and data (a
restart after a crash), and `close()`, which stops what runs and removes the directory.

Not tied to the parent's death (`die_with_parent=False`): a restart runs in a worker thread so
the event loop keeps serving the scenario's clients, and the kernel's parent-death signal would
fire when that thread ends. Cleanup is the owning fixture's `finally` instead.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from infra import process
from infra.kafka import KafkaBroker
from infra.kafka_cluster import KafkaCluster
from infra.postgres import EmbeddedPostgres
from oee.settings import Settings

PORTS = range(30000, 32000)  # away from the session services' range (20000-30000)


def free_ports(count: int) -> list[int]:
    free = [p for p in random.sample(PORTS, 200) if process.port_is_free(p)]
    assert len(free) >= count, "no free loopback ports for a scenario's own service"
    return free[:count]


def _data_dir(prefix: str) -> Path:
    # Not under pytest's tmp_path: PostgreSQL runs as its own user and must reach it.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


class _Killable:
    child: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to clean up."""
        assert self.child is not None and self.child.poll() is None, "not running"
        os.killpg(self.child.pid, signal.SIGKILL)
        self.child.wait(timeout=30)

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.poll() is None


class OwnBroker(_Killable):
    def __init__(self, template: Settings) -> None:
        port, controller_port = free_ports(2)
        self.data_dir = _data_dir("oee-chaos-kafka-")
        self.broker = KafkaBroker(version=template.kafka_version, port=port,
                                  controller_port=controller_port, data_dir=self.data_dir,
                                  cache_dir=template.cache_dir, heap="512m")

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    def start(self) -> None:
        self.child = self.broker.start(timeout_s=240.0, die_with_parent=False)

    def close(self) -> None:
        try:
            if self.running:
                self.broker.stop(child=self.child)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class OwnCluster:
    """Three KRaft nodes (KAFKA_BROKERS=3): the path for users who outgrow one machine."""

    SIZE = 3

    def __init__(self, template: Settings) -> None:
        base = _free_run(2 * self.SIZE)  # node i: base + 2i (client), base + 2i + 1 (controller)
        self.data_dir = _data_dir("oee-chaos-cluster-")
        self.cluster = KafkaCluster(template.kafka_version, self.SIZE, base, base + 1,
                                    self.data_dir, template.cache_dir, heap="384m")
        self.children: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    def start(self) -> None:
        self.children = self.cluster.start(timeout_s=300.0, die_with_parent=False)

    def kill_node(self, index: int) -> None:
        """SIGKILL one node's process group (a node this scenario started)."""
        pid = self.cluster.nodes()[index].running_pid()
        assert pid is not None, f"node {index + 1} is not running"
        os.killpg(pid, signal.SIGKILL)
        for child in self.children:
            if child.pid == pid:
                child.wait(timeout=30)

    def close(self) -> None:
        try:
            self.cluster.stop(children=self.children)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _free_run(count: int) -> int:
    """A base port p with p..p+count-1 all free."""
    for base in random.sample(PORTS, 200):
        if all(process.port_is_free(base + offset) for offset in range(count)):
            return base
    raise AssertionError(f"no {count} consecutive free loopback ports for a scenario's cluster")


class OwnPostgres(_Killable):
    def __init__(self) -> None:
        (port,) = free_ports(1)
        self.data_dir = _data_dir("oee-chaos-pg-")
        # Durable: with synchronous_commit off a crash loses acknowledged commits, which
        # would be the test's doing, not the engine's.
        self.server = EmbeddedPostgres(data_dir=self.data_dir, port=port, durable=True)

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def start(self) -> None:
        self.child = self.server.start(timeout_s=120.0, die_with_parent=False)

    def close(self) -> None:
        try:
            if self.running:
                self.server.stop(child=self.child)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
