"""A local Kafka cluster of several combined broker+controller nodes (KAFKA_BROKERS > 1).

Consumes a version, the node count, two base ports and two directories; produces a running
KRaft cluster on 127.0.0.1 and its bootstrap list. Node i (from 0) listens on `port + 2i` and
`controller_port + 2i` and keeps its data in `data_dir/node-<i+1>`; every node is a voter and
all are formatted with one cluster id, kept in `data_dir/cluster.id`. The same KafkaBroker
launcher runs each node, so the jars, logs and pid files are laid out as for a single node.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra import process
from infra.errors import PrerequisiteError
from infra.kafka import KafkaBroker, Quorum, new_cluster_id


@dataclass(frozen=True, slots=True)
class KafkaCluster:
    version: str
    size: int
    port: int
    controller_port: int
    data_dir: Path
    cache_dir: Path
    heap: str = "512m"  # per node: three JVMs share the machine
    c1_only: bool = True  # KAFKA_JVM_C1_ONLY (oee.settings)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes())

    def nodes(self) -> tuple[KafkaBroker, ...]:
        ports = [(self.port + 2 * i, self.controller_port + 2 * i) for i in range(self.size)]
        quorum = Quorum(tuple((i + 1, c) for i, (_, c) in enumerate(ports)), self._cluster_id())
        return tuple(
            KafkaBroker(self.version, port, controller, self.data_dir / f"node-{i + 1}",
                        self.cache_dir, self.heap, node_id=i + 1, quorum=quorum,
                        c1_only=self.c1_only)
            for i, (port, controller) in enumerate(ports)
        )

    def ensure_libs(self) -> Path:
        return self.nodes()[0].ensure_libs()

    def preflight(self) -> None:
        ports = [p for node in self.nodes() for p in (node.port, node.controller_port)]
        if len(set(ports)) != len(ports):
            raise PrerequisiteError(
                f"the {self.size} Kafka nodes need distinct ports KAFKA_PORT+2i and "
                f"KAFKA_CONTROLLER_PORT+2i, but {sorted(ports)} overlap: move one of them"
            )
        for node in self.nodes():
            if node.running_pid() is None:
                node.preflight()

    def running_pid(self) -> int | None:
        """The first node's pid when every node runs, else None (`up` starts the others)."""
        pids = self.running_pids()
        return pids[0] if None not in pids else None

    def running_pids(self) -> list[int | None]:
        return [node.running_pid() for node in self.nodes()]

    def start(
        self, *, timeout_s: float = 180.0, die_with_parent: bool = False
    ) -> list[subprocess.Popen[bytes]]:
        """Launch every node that is not running, then wait until each serves.

        A node cannot serve before a majority of the voters runs, so none is waited for
        before all are launched. A failure stops the nodes this call launched.
        """
        self.preflight()
        self.ensure_libs()
        launched = [(node, node.launch(die_with_parent=die_with_parent))
                    for node in self.nodes() if node.running_pid() is None]
        deadline = time.monotonic() + timeout_s
        try:
            for node, child in launched:
                node.wait_ready(child, max(deadline - time.monotonic(), 1.0))
        except BaseException:
            for node, child in reversed(launched):
                node.stop(child=child)
            raise
        return [child for _, child in launched]

    def stop(
        self, *, timeout_s: float = 30.0, children: list[subprocess.Popen[bytes]] | None = None
    ) -> None:
        """Stop every node at once (reaping those of `children`, this process's own).

        One by one, the last nodes would wait out their controlled shutdown for a quorum
        that is already gone; signalled together, each stops on its own.
        """
        own = {child.pid: child for child in children or []}
        pids = [(node, node.running_pid()) for node in self.nodes()]
        for _, pid in pids:
            if pid is not None:
                process.signal_group(pid, signal.SIGTERM)
        for node, pid in pids:
            node.stop(timeout_s=timeout_s, child=own.get(pid) if pid is not None else None)

    def _cluster_id(self) -> str:
        path = self.data_dir / "cluster.id"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()
