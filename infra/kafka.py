"""A local Apache Kafka broker, resolved from Maven Central and run with `java` in KRaft mode.

Consumes: a Kafka version, two ports and two directories (jar cache, data). Produces: a
running single-node broker+controller on 127.0.0.1 and its bootstrap address.

Layout under `data_dir`: server.properties, log4j2.properties, kafka.pid, logs/ (server.log,
stdout.log) and data/ (the log dirs, formatted once and kept between runs).
`cache_dir/kafka-<version>-<pom digest>/libs` holds the jars (the broker's
and the command-line tools', see infra/kafka_tools.py), resolved once by `mvn` from
infra/pom.xml: a later start needs no network.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from infra import cache_dirs, process
from infra.errors import PrerequisiteError

T = TypeVar("T")
POM = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_COMPLETE_MARKER = ".complete"  # written last: a cache dir without it is a broken download
_JVM_OPTS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-Djava.awt.headless=true",
)

_LOG4J2 = """\
# Written by infra/kafka.py. Quiet: warnings and start/stop lines, to one file.
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""


@dataclass(frozen=True, slots=True)
class Quorum:
    """The nodes of a local multi-node cluster: (node id, controller port) each, one cluster id.

    Every node is a voter (KRaft combined mode) and is formatted with the same cluster id.
    """

    voters: tuple[tuple[int, int], ...]
    cluster_id: str

    @property
    def size(self) -> int:
        return len(self.voters)


@dataclass(frozen=True, slots=True)
class KafkaBroker:
    """One local Kafka node (broker and KRaft controller in one JVM), alone or in a quorum."""

    version: str
    port: int
    controller_port: int
    data_dir: Path
    cache_dir: Path
    heap: str = "1g"
    node_id: int = 1
    quorum: Quorum | None = None  # None: a single-node cluster of its own
    c1_only: bool = True  # KAFKA_JVM_C1_ONLY (oee.settings): no C2 compile burst

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs_dir(self) -> Path:
        """Per version and per pom: jars resolved for an older pom are never taken as complete."""
        return self.cache_dir / f"kafka-{self.version}-{_pom_digest()}" / "libs"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    # --- lifecycle ----------------------------------------------------------------------

    def start(
        self, *, timeout_s: float = 120.0, die_with_parent: bool = False
    ) -> subprocess.Popen[bytes]:
        """Resolve jars if needed, format storage once, start the JVM and wait until it serves.

        Raises PrerequisiteError when java/mvn are missing, a port is taken, the jars cannot
        be resolved, or the broker exits or does not answer before the deadline.
        """
        self.preflight()
        child = self.launch(die_with_parent=die_with_parent)
        try:
            self.wait_ready(child, timeout_s)
        except BaseException:
            self.stop(child=child)
            raise
        return child

    def launch(self, *, die_with_parent: bool = False) -> subprocess.Popen[bytes]:
        """Resolve jars if needed, format storage once and start the JVM, without waiting.

        A node of a quorum cannot serve before a majority of its voters runs: a cluster
        launches every node, then waits for each.
        """
        self.ensure_libs()
        config = self._write_config()
        self._format_storage(config)
        child = process.spawn(
            self._java_argv(MAIN_CLASS, str(config), heap=self.heap),
            log_path=self.data_dir / "logs" / "stdout.log",
            cwd=self.data_dir,
            die_with_parent=die_with_parent,
        )
        process.write_pid(self.pid_file, child.pid)
        return child

    def preflight(self) -> None:
        """Fail fast, before anything starts, if `java` is missing or a port is taken."""
        _require_tool("java", "install Java 17+ (apt-get install openjdk-17-jre-headless)")
        if not (self.libs_dir / _COMPLETE_MARKER).exists():
            _require_tool("mvn", "install Maven 3.8+ (apt-get install maven)")
        process.require_free_port(self.port, what="Kafka", setting="KAFKA_PORT")
        process.require_free_port(
            self.controller_port, what="the Kafka controller", setting="KAFKA_CONTROLLER_PORT"
        )

    def cluster_id(self) -> str | None:
        """The id the storage was formatted with (None before the first start)."""
        try:
            lines = (self.data_dir / "data" / "meta.properties").read_text().splitlines()
        except FileNotFoundError:
            return None
        pairs = (line.split("=", 1) for line in lines if "=" in line and line[0] != "#")
        return dict(pairs).get("cluster.id")

    def running_pid(self) -> int | None:
        """The pid of this data dir's broker if it runs (started by any process)."""
        return process.read_pid(self.pid_file, marker=MAIN_CLASS)

    def stop(
        self, *, timeout_s: float = 30.0, child: subprocess.Popen[bytes] | None = None
    ) -> None:
        """SIGTERM (a clean shutdown, so the next start needs no log recovery), then SIGKILL."""
        pid = child.pid if child is not None else self.running_pid()
        if pid is not None:
            process.terminate(pid, timeout_s=timeout_s, child=child)
        self.pid_file.unlink(missing_ok=True)

    # --- jars -----------------------------------------------------------------------------

    def ensure_libs(self) -> Path:
        """The broker's jars, downloaded by Maven only when the cache is missing or incomplete."""
        if (self.libs_dir / _COMPLETE_MARKER).exists():
            return self.libs_dir
        mvn = _require_tool("mvn", "install Maven 3.8+ (apt-get install maven)")
        # A staging directory of its own: two processes starting a broker on a fresh machine
        # (e.g. two test workers) download side by side, and the first to publish wins.
        staging = self.libs_dir.with_name(f"libs.partial.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            # -U: retry artifacts whose earlier download failed (Maven caches a miss for a day).
            [mvn, "-q", "-B", "-U", "-f", str(POM), "dependency:copy-dependencies",
             f"-Dkafka.version={self.version}", f"-DoutputDirectory={staging}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise PrerequisiteError(
                f"Maven could not resolve Apache Kafka {self.version} "
                f"(org.apache.kafka:kafka_2.13) from Maven Central: {_maven_error(result)}. "
                "Check that Maven Central is reachable, or set KAFKA_VERSION to a published release"
            )
        (staging / _COMPLETE_MARKER).write_text(self.version)
        try:
            cache_dirs.publish(staging, self.libs_dir, _COMPLETE_MARKER)
        except OSError as error:
            raise PrerequisiteError(f"the broker's jars: {error}") from error
        return self.libs_dir

    # --- configuration and storage ----------------------------------------------------------

    def _write_config(self) -> Path:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log_file=self.log_file))
        config = self.data_dir / "server.properties"
        config.write_text(server_properties(self))
        return config

    def _format_storage(self, config: Path) -> None:
        """Format the log dir once; an existing meta.properties means it holds our data."""
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        cluster_id = self.quorum.cluster_id if self.quorum else new_cluster_id()
        argv = self._java_argv(
            STORAGE_TOOL, "format", "--ignore-formatted", "-t", cluster_id, "-c", str(config),
            heap="256m",
        )
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, cwd=self.data_dir
        )
        if result.returncode != 0:
            raise PrerequisiteError(
                f"formatting Kafka storage in {self.data_dir / 'data'} failed: "
                f"{(result.stderr or result.stdout).strip()[-500:]}"
            )

    def _java_argv(self, main_class: str, *args: str, heap: str) -> list[str]:
        return [
            "java", f"-Xmx{heap}", "-Xms256m", *_JVM_OPTS,
            *(("-XX:TieredStopAtLevel=1",) if self.c1_only else ()),
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", f"{self.libs_dir}/*", main_class, *args,
        ]

    # --- readiness ------------------------------------------------------------------------

    def wait_ready(self, child: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise PrerequisiteError(
                    f"the Kafka broker exited with code {child.returncode} while starting; "
                    f"see {self.log_file}: {_tail(self.log_file)}"
                )
            # A plain connect first: cheap, and keeps aiokafka from logging a refused
            # connection on every poll while the JVM boots. Then the cluster id: until our
            # JVM has bound the port, another broker (a concurrent test session) may answer.
            if process.accepts_connections(self.port) and _run_in_thread(
                _answering_cluster_id(self.bootstrap_servers)
            ) == self.cluster_id():
                return
            time.sleep(process.POLL_INTERVAL_S * 2)
        raise PrerequisiteError(
            f"the Kafka broker did not answer on {self.bootstrap_servers} within {timeout_s:.0f}s; "
            f"see {self.log_file}"
        )


def server_properties(broker: KafkaBroker) -> str:
    """KRaft combined mode, loopback only, sized for a 2-core development machine.

    In a quorum of 3 or more, the internal topics get 3 replicas and need 2 in sync (so they
    survive one node down); alone, one of each.
    """
    host, port, controller_port = "127.0.0.1", broker.port, broker.controller_port
    quorum = broker.quorum or Quorum(((broker.node_id, controller_port),), "")
    voters = ",".join(f"{node}@{host}:{voter_port}" for node, voter_port in quorum.voters)
    replicas, in_sync = str(min(3, quorum.size)), str(min_insync_replicas(min(3, quorum.size)))
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(broker.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(broker.data_dir / "data"),
        # Topics are created explicitly (infra/topics.py) with their partitions and retention;
        # a typo in a topic name must fail, not create a 1-partition topic.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "min.insync.replicas": in_sync,
        # A loaded 2-core machine can take minutes to boot several JVMs; the default 60 s
        # makes a node give up registering with the quorum and exit.
        "initial.broker.registration.timeout.ms": "300000",
        # No 3 s wait for more members before the first rebalance: one machine, fast tests.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    if quorum.size > 1:
        # A node that dies without a controlled shutdown (SIGKILL, power) keeps leading its
        # partitions until the controller stops hearing from it: 9 s by default, during which
        # every acks=all write to those partitions waits. Heartbeats every 0.5 s and 3 s of
        # silence move leadership within ~3 s (chaos scenario i: 9-13 s before).
        settings["broker.heartbeat.interval.ms"] = "500"
        settings["broker.session.timeout.ms"] = "3000"
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def min_insync_replicas(replication_factor: int) -> int:
    """Replicas an acks=all write needs: 2 once there are 3 (one node may be down), else 1."""
    return 2 if replication_factor >= 3 else 1


async def _answering_cluster_id(bootstrap_servers: str) -> str | None:
    """The cluster id in the broker's metadata once it lists itself as a live node, else None."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return str(cluster["cluster_id"]) if cluster.get("brokers") else None
    except (KafkaError, OSError, asyncio.TimeoutError):
        return None
    finally:
        await admin.close()


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    `start()` is synchronous and may be called from code that owns an event loop (a pytest
    session fixture, the CLI); a thread keeps this probe's loop away from theirs.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, as Kafka's Uuid."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as a CLI option
            return text


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()[:8]


def _require_tool(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrerequisiteError(f"`{name}` is not on PATH and the local Kafka needs it: {how}")
    return path


def _maven_error(result: subprocess.CompletedProcess[str]) -> str:
    """Maven's first error line, without its level tag, colour codes and help pointer."""
    text = _ANSI.sub("", result.stdout + result.stderr)
    lines = [line for line in text.splitlines() if line.startswith("[ERROR]")]
    if not lines:
        return f"mvn exited with code {result.returncode}"
    return lines[0].removeprefix("[ERROR]").split(" -> [Help")[0].strip()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
