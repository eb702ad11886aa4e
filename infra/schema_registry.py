"""The schema registry of one Settings: the local one (start, stop, status) or an external one
(`SCHEMA_REGISTRY_URL`), and the codec registered with it.

Consumes a Settings and, for the local registry, the PostgreSQL DSN it stores schemas in;
produces the registry URL every process uses and `registered_codec(settings)`: every committed
version of each schema registered under the subjects of the topics that carry it, and a codec
that writes the Confluent framing with those ids. The local registry is
`python -m infra.registry_server` in its own session, its pid in DATA_DIR/registry.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra import process
from infra.errors import PrerequisiteError
from oee.settings import Settings, Topics
from schemas.checkpoints import (
    Checkpoint,
    CheckpointReader,
    checkpoint_value,
    load_checkpoint_history,
)
from schemas.claims import claim_subject, claim_value, load_claim_schema
from schemas.codec import Codec, load_histories
from schemas.registry import RegistryClient, RegistryError, register_histories, subject

from schemas.snapshots import SnapshotCodec, load_snapshot_history
from schemas.versions import SchemaHistory

_MARKER = "infra.registry_server"


def topics_by_schema(
    histories: Sequence[SchemaHistory], topics: Topics
) -> list[tuple[SchemaHistory, tuple[str, ...]]]:
    """Each schema (events, commands, work, market: `load_histories`' order) with the topics
    whose record values it describes. The dead-letter topic keeps whatever bytes it got."""
    carried = ((topics.events,), (topics.commands,), (topics.routing, topics.execution),
               (topics.prices, topics.pools))
    return list(zip(histories, carried, strict=True))


def registry_url(settings: Settings) -> str:
    """Where the engine's registry clients connect: the external registry or the local one."""
    return settings.schema_registry_url or local_registry(settings).url


def registered_codec(settings: Settings) -> Codec:
    """A codec whose every schema version is registered under its topics' subjects (a process's
    composition root calls this once; the registry then answers only unknown ids)."""
    client = RegistryClient(registry_url(settings))
    histories = load_histories()
    try:
        ids = register_histories(client, topics_by_schema(histories, settings.topics))
    except RegistryError as error:
        client.close()
        raise _unreachable(error) from error
    return Codec(*histories, ids=ids, source=client)  # kept open: it answers unknown ids


def registered_claim_writer(settings: Settings) -> Callable[[str, int], bytes]:
    """How a worker writes the value of a claim record (schemas.claims): its schema registered
    under its own subject, once; then a pure function of the claimant and the partition."""
    schema = load_claim_schema()
    with _registry(settings) as client:
        schema_id = client.register(claim_subject(settings.topics.events), schema)
    return lambda claimant, partition: claim_value(claimant, partition, schema_id, schema)


def registered_checkpoint_writer(settings: Settings) -> Callable[[Checkpoint], bytes]:
    """How a worker writes a chain checkpoint (schemas.checkpoints): every committed version
    registered under `<orders.checkpoints>-value`, once; then a pure function of the
    checkpoint, written with the current version."""
    history = load_checkpoint_history()
    ids = _registered_ids(settings, history, settings.topics.checkpoints)
    schema_id, schema = ids[history.current_version], dict(history.current)
    return lambda checkpoint: checkpoint_value(checkpoint, schema_id, schema)


def registered_checkpoint_reader(settings: Settings) -> CheckpointReader:
    """How `oee replay --verify` reads the checkpoints: every version's id, as registered."""
    history = load_checkpoint_history()
    return CheckpointReader(_registered_ids(settings, history, settings.topics.checkpoints),
                            history)


def registered_snapshot_codec(settings: Settings) -> SnapshotCodec:
    """The codec of the order writer's snapshots (schemas.snapshots): every committed version
    registered under `<snapshots topic>-value`, oldest first, so that a snapshot an older
    worker wrote is still read (and the current version written)."""
    history = load_snapshot_history()
    return SnapshotCodec.of_history(
        _registered_ids(settings, history, settings.topics.snapshots), history)


def _registered_ids(settings: Settings, history: SchemaHistory, topic: str
                    ) -> Mapping[int, int]:
    """Every version of `history` registered under `topic`'s subject: version -> id."""
    with _registry(settings) as client:
        return register_histories(client, [(history, (topic,))])[history.name]


@contextmanager
def _registry(settings: Settings) -> Iterator[RegistryClient]:
    """A client for a few registrations, closed after; an unreachable registry says how to
    start one (PrerequisiteError)."""
    client = RegistryClient(registry_url(settings))
    try:
        yield client
    except RegistryError as error:
        raise _unreachable(error) from error
    finally:
        client.close()


def _unreachable(error: RegistryError) -> PrerequisiteError:
    return PrerequisiteError(f"{error}: start it with `oee infra up` or set SCHEMA_REGISTRY_URL")


def reading_codec(settings: Settings) -> Codec:
    """A codec for a process that reads (projector, replay, market follower): the same
    registration as a writer's, so it knows the id of every committed version from the start
    and asks the registry only about an id of no committed version (a newer release's). A
    reader that met its first ids while the registry was down would otherwise stop on them."""
    return registered_codec(settings)


@dataclass(frozen=True, slots=True)
class LocalRegistry:
    """The local registry process, storing its schemas in the PostgreSQL at `dsn`."""

    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "registry.log"

    def preflight(self) -> None:
        process.require_free_port(self.port, what="the schema registry",
                                  setting="SCHEMA_REGISTRY_PORT")

    def running_pid(self) -> int | None:
        return process.read_pid(self.pid_file, marker=_MARKER)

    def start(self, dsn: str, *, timeout_s: float = 30.0,
              die_with_parent: bool = False) -> subprocess.Popen[bytes]:
        self.preflight()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {"DATABASE_URL": dsn, "SCHEMA_REGISTRY_PORT": str(self.port),
               "PATH": "/usr/bin:/bin"}
        child = process.spawn([sys.executable, "-m", _MARKER], log_path=self.log_file,
                              cwd=self.data_dir, env=env, die_with_parent=die_with_parent)
        process.write_pid(self.pid_file, child.pid)
        try:
            self._wait_ready(child, timeout_s)
        except BaseException:
            self.stop(child=child)
            raise
        return child

    def stop(self, *, child: subprocess.Popen[bytes] | None = None) -> None:
        pid = child.pid if child is not None else self.running_pid()
        if pid is not None:
            process.terminate(pid, timeout_s=10.0, child=child)
        self.pid_file.unlink(missing_ok=True)

    def answers(self) -> bool:
        return registry_answers(self.url)

    def _wait_ready(self, child: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if child.poll() is not None:
                raise PrerequisiteError(f"the schema registry exited with {child.returncode}; "
                                        f"see {self.log_file}")
            if time.monotonic() > deadline:
                raise PrerequisiteError(f"the schema registry did not answer within "
                                        f"{timeout_s:.0f}s; see {self.log_file}")
            time.sleep(process.POLL_INTERVAL_S)


def registry_answers(url: str) -> bool:
    """A registry answers `GET /config` at `url` (status only: one short request)."""
    try:
        return httpx.get(f"{url.rstrip('/')}/config", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def local_registry(settings: Settings) -> LocalRegistry:
    return LocalRegistry(settings.schema_registry_port, settings.data_dir / "registry")


@contextmanager
def schema_registry(settings: Settings, dsn: str) -> Iterator[str]:
    """Yield the URL of a registry that runs for the whole block (same rules as Kafka's: the
    external one, else the local one if `oee infra up` runs it, else one started now)."""
    if settings.schema_registry_url:
        yield settings.schema_registry_url
        return
    registry = local_registry(settings)
    if registry.running_pid() is not None:
        yield registry.url
        return
    child = registry.start(dsn, die_with_parent=True)
    try:
        yield registry.url
    finally:
        registry.stop(child=child)
