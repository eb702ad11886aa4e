"""The local services of one Settings: which to start, where they listen, whether they run.

Consumes a Settings; produces the Kafka bootstrap address, PostgreSQL DSN and schema registry
URL every entrypoint uses. An external service (`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`,
`SCHEMA_REGISTRY_URL`) is used as is and never started or stopped here; otherwise it is the
local broker, server or registry, with its data under `settings.data_dir`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from infra import process
from infra.kafka import KafkaBroker
from infra.kafka_cluster import KafkaCluster
from infra.postgres import EmbeddedPostgres
from infra.schema_registry import LocalRegistry, local_registry, registry_answers, registry_url
from oee.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    running: bool
    managed: bool  # False for an external service given by the environment
    pid: int | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class LocalServices:
    """The broker, database and schema registry of one Settings; `None` where an external one
    is configured."""

    settings: Settings
    kafka: KafkaBroker | KafkaCluster | None
    postgres: EmbeddedPostgres | None
    registry: LocalRegistry | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalServices:
        kafka = None if settings.kafka_bootstrap_servers else local_broker(settings)
        postgres = None if settings.database_url else local_postgres(settings)
        registry = None if settings.schema_registry_url else local_registry(settings)
        return cls(settings, kafka, postgres, registry)

    @property
    def bootstrap_servers(self) -> str:
        return bootstrap_servers(self.settings)

    @property
    def dsn(self) -> str:
        return database_url(self.settings)

    def up(self) -> None:
        """Start whichever local service is not running yet, detached from this process.

        All checks run before anything starts, and a failure stops what this call started,
        so a failed `up` leaves the machine as it found it.
        """
        services = (self.postgres, self.kafka)
        to_start = [s for s in services if s is not None and s.running_pid() is None]
        registry = self.registry if self.registry and self.registry.running_pid() is None else None
        for service in [*to_start, *([registry] if registry else [])]:
            service.preflight()
        started: list[KafkaBroker | KafkaCluster | EmbeddedPostgres | LocalRegistry] = []
        try:
            for service in to_start:
                service.start()
                started.append(service)
            if registry is not None:  # it keeps its schemas in the PostgreSQL just started
                registry.start(self.dsn)
                started.append(registry)
        except BaseException:
            for service in reversed(started):
                service.stop()
            raise

    def down(self) -> None:
        """Stop the local services started by `up` (external ones are left alone)."""
        if self.registry is not None:
            self.registry.stop()
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def status(self) -> list[ServiceStatus]:
        return [self._kafka_status(), self._postgres_status(), self._registry_status()]

    def _kafka_status(self) -> ServiceStatus:
        if self.kafka is None:
            reachable = kafka_reachable(self.bootstrap_servers)
            return ServiceStatus("kafka", self.bootstrap_servers, reachable, False)
        pid = self.kafka.running_pid()
        return ServiceStatus(
            "kafka", self.bootstrap_servers, pid is not None, True, pid, self.kafka.version
        )

    def _postgres_status(self) -> ServiceStatus:
        if self.postgres is None:
            return ServiceStatus("postgres", self.dsn, _pg_reachable(self.dsn), False)
        pid = self.postgres.running_pid()
        return ServiceStatus("postgres", self.dsn, pid is not None, True, pid)

    def _registry_status(self) -> ServiceStatus:
        url = registry_url(self.settings)
        if self.registry is None:
            return ServiceStatus("schema-registry", url, registry_answers(url), False)
        pid = self.registry.running_pid()
        return ServiceStatus("schema-registry", url, pid is not None, True, pid)


@contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[str]:
    """Yield the bootstrap address of a Kafka that runs for the whole block.

    The external cluster if configured; else the local broker of `settings.data_dir` if
    `oee infra up` already runs it; else a local broker started now and stopped afterwards.
    """
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    broker = local_broker(settings)
    if broker.running_pid() is not None:
        yield broker.bootstrap_servers
        return
    if isinstance(broker, KafkaCluster):
        children = broker.start(die_with_parent=True)
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop(children=children)
        return
    child = broker.start(die_with_parent=True)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop(child=child)


@contextmanager
def postgres_dsn(settings: Settings, *, durable: bool = True) -> Iterator[str]:
    """Yield the DSN of a PostgreSQL that runs for the whole block (same rules as Kafka's)."""
    if settings.database_url:
        yield settings.database_url
        return
    server = local_postgres(settings, durable=durable)
    if server.running_pid() is not None:
        yield server.dsn
        return
    child = server.start(die_with_parent=True)
    try:
        yield server.dsn
    finally:
        server.stop(child=child)


def local_broker(settings: Settings) -> KafkaBroker | KafkaCluster:
    """The local Kafka of `settings`: one node, or a cluster of KAFKA_BROKERS nodes."""
    if settings.kafka_brokers > 1:
        return KafkaCluster(settings.kafka_version, settings.kafka_brokers, settings.kafka_port,
                            settings.kafka_controller_port, settings.data_dir / "kafka",
                            settings.cache_dir, c1_only=settings.kafka_jvm_c1_only)
    return KafkaBroker(
        version=settings.kafka_version,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        data_dir=settings.data_dir / "kafka",
        cache_dir=settings.cache_dir,
        c1_only=settings.kafka_jvm_c1_only,
    )


def local_postgres(settings: Settings, *, durable: bool = True) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir / "postgres", settings.postgres_port, durable)


def bootstrap_servers(settings: Settings) -> str:
    """Where the engine's Kafka clients connect: the external cluster or the local broker."""
    return settings.kafka_bootstrap_servers or local_broker(settings).bootstrap_servers


def database_url(settings: Settings) -> str:
    """Where the engine's PostgreSQL clients connect: the external server or the local one."""
    return settings.database_url or local_postgres(settings).dsn


def kafka_reachable(bootstrap: str) -> bool:
    """A TCP connect to the first bootstrap address (status only: cheap, no client needed)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return process.accepts_connections(int(port), host or "127.0.0.1")


def _pg_reachable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
