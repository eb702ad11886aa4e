"""The one settings object: every knob of the engine, read from the environment.

Built once at start-up by the entrypoint (CLI, worker, API) and passed down; nothing reads
the environment anywhere else. Field names map to upper-case environment variables
(`kafka_bootstrap_servers` <- `KAFKA_BOOTSTRAP_SERVERS`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic name the engine uses, derived from one optional prefix (test isolation)."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def commands(self) -> str:
        """Inputs to the order aggregate: edge commands, stage reports, timers (key: order id)."""
        return self._name("orders.commands")

    @property
    def events(self) -> str:
        """The event store (key: order id). Never compacted, infinite retention."""
        return self._name("orders.events")

    @property
    def routing(self) -> str:
        """Work items for the routing stage (key: order id)."""
        return self._name("orders.routing")

    @property
    def execution(self) -> str:
        """Work items for the execution stage (key: order id)."""
        return self._name("orders.execution")

    @property
    def prices(self) -> str:
        """Market data: PoolSnapshot, PriceTick (key: the pair)."""
        return self._name("market.prices")

    @property
    def pools(self) -> str:
        """Market data: PoolCreated, LiquidityChanged (key: the pair)."""
        return self._name("market.pools")

    @property
    def dead_letters(self) -> str:
        return self._name("orders.deadletter")

    @property
    def checkpoints(self) -> str:
        """The writer's chain checkpoints: Merkle roots of each events partition's heads."""
        return self._name("orders.checkpoints")

    @property
    def snapshots(self) -> str:
        """The order writer's snapshots (key: the orders.events partition). Compacted: only
        the latest per partition matters; a cache of the event store, never the truth."""
        return self._name("orders.snapshots")


class FeedMode(StrEnum):
    """What `python -m producers.feed` publishes to the market topics."""

    RANDOM = "random"  # a seeded random walk of the default market, with listings
    SCRIPTED = "scripted"  # the events of FEED_SCRIPT, on its timetable
    OFF = "off"  # nothing: another producer owns the market topics


class EventLoop(StrEnum):
    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


class AuthMode(StrEnum):
    """Whether the API asks for a key (see api.auth)."""

    ON = "on"  # every route but health, readiness, docs and the dashboard's files needs a key
    OFF = "off"  # no keys, no owners: local experiments only (refused off the loopback)


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    AUTO = "auto"  # json unless stderr is a terminal


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # --- infrastructure -------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        None, description="Use this Kafka cluster instead of the local broker the launcher starts."
    )
    # Newest release on Maven Central; aiokafka 0.14 and faust-streaming 0.15.3 pass the
    # suite against it. docker-compose.yml runs the same version (a test checks).
    kafka_version: str = "4.4.0"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_jvm_c1_only: bool = Field(
        True, description="The local broker's JVM compiles with C1 only (-XX:TieredStopAtLevel=1)"
        ": on a small machine whose brokers live minutes (tests, benchmarks, a laptop's `make "
        "run`), C2's compile burst costs more CPU than its faster code saves (broker CPU per "
        "order 32 -> 16 ms, `bench/`). False for a long-lived local broker."
    )
    kafka_brokers: int = Field(
        1, ge=1, le=9, description="Local Kafka nodes (combined broker+controller); node i "
        "listens on KAFKA_PORT+2i and KAFKA_CONTROLLER_PORT+2i. 3 survives one node down."
    )
    database_url: str | None = Field(
        None, description="Use this PostgreSQL instead of the embedded one."
    )
    postgres_port: int = 15432
    schema_registry_url: str | None = Field(
        None, description="Use this Confluent-compatible schema registry instead of the local "
        "one the launcher starts (e.g. http://registry:8081 or Apicurio's .../apis/ccompat/v7)."
    )
    schema_registry_host: str = Field(
        "127.0.0.1", description="Where the local registry listens (0.0.0.0 in a container)."
    )
    schema_registry_port: int = 18081
    data_dir: Path = Path.home() / ".local" / "share" / "oee"
    cache_dir: Path = Path.home() / ".cache" / "oee"

    # --- topology -----------------------------------------------------------------
    topic_prefix: str = ""
    partitions: int = 12
    replication_factor: int = Field(
        0, ge=0, description="Replicas of each engine topic; 0: as many as the local Kafka "
        "nodes, at most 3. Topics with 3 or more need 2 in sync for an acks=all write."
    )
    engine_id: str = Field("oee-engine", description="Faust app id = stream consumer group.")
    db_schema: str = Field("public", description="Schema of the read model.")

    # --- edge -----------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # --- auth (api.auth) --------------------------------------------------------------
    auth_mode: AuthMode = Field(
        AuthMode.ON, description="off: no API keys (refused unless API_HOST is a loopback "
        "address): for local experiments and old clients only."
    )
    auth_secret: SecretStr | None = Field(
        None, description="Server secret API keys are hashed under (HMAC-SHA256); unset: "
        "generated once into DATA_DIR/auth_secret. Every API process must share it."
    )
    auth_key_cache_s: float = Field(
        0.5, gt=0, le=1.0, description="How long an API process trusts what it read of a key: "
        "a revoked key is refused everywhere within this time."
    )
    rate_limit_per_s: float = Field(
        50.0, gt=0, description="Requests per second one key may make to one API process "
        "(token bucket refill); beyond it: 429 with Retry-After."
    )
    rate_limit_burst: int = Field(
        100, ge=1, description="Token bucket size: requests one key may make at once."
    )
    ws_max_per_key: int = Field(
        16, ge=1, description="Open WebSockets of one key on one API process; one more "
        "closes 1013."
    )
    ws_max_per_process: int = Field(
        2000, ge=1, description="Open WebSockets of one API process, every key together."
    )

    # --- venues and execution (simulated) --------------------------------------------
    market_seed: int = 42
    venue_latency_min_ms: int = 150
    venue_latency_max_ms: int = 250
    confirm_delay_min_ms: int = 2000
    confirm_delay_max_ms: int = 3000
    transient_failure_rate: float = Field(0.05, ge=0.0, le=1.0)
    max_attempts: int = Field(3, ge=1, le=10)
    retry_base_delay_ms: int = Field(1000, ge=1)
    stall_timeout_ms: int = Field(15000, ge=100)

    # --- market data (producers.feed, marketdata.follower) ----------------------------
    feed_mode: FeedMode = FeedMode.RANDOM
    feed_interval_ms: int = Field(
        1000, ge=10, description="Random feed: one walk step (every pool's snapshot) per interval."
    )
    feed_volatility_bps: int = Field(
        10, ge=0, le=1000, description="Random feed: the most a token's price moves per step."
    )
    feed_listing_rate: float = Field(
        0.02, ge=0.0, le=1.0, description="Random feed: chance per step of a new listing."
    )
    feed_liquidity_rate: float = Field(
        0.1, ge=0.0, le=1.0, description="Random feed: chance per step of a liquidity change."
    )
    feed_script: Path | None = Field(
        None, description="Scripted feed: a JSON-lines file of market events to play."
    )
    market_catch_up_records: int = Field(
        500, ge=1, description="Records per market partition a starting process replays."
    )

    # --- consumers that follow live records (infra/fetch_pacing.py) --------------------
    fetch_idle_max_wait_ms: int = Field(
        500, ge=0, validation_alias=AliasChoices("fetch_idle_max_wait_ms",
                                                 "stream_fetch_max_wait_ms"),
        description="Long-poll of every consumer that follows live records (workers, the API's "
        "fan-out, market followers) while none arrive; the broker answers at the first record, "
        "so this only sets how often an idle consumer asks (Faust hard-codes 1500). "
        "STREAM_FETCH_MAX_WAIT_MS is its former name."
    )
    fetch_busy_max_wait_ms: int = Field(
        100, ge=0, description="Long-poll of those consumers while records flow (the last fetch "
        "brought some, or some still wait to be consumed): it bounds how late a partition "
        "left out of the fetch in flight is asked for again."
    )
    fetch_busy_min_bytes: int = Field(
        1, ge=1, description="Bytes a busy fetch of those consumers waits for (within "
        "FETCH_BUSY_MAX_WAIT_MS). 1: answered at the first record. 16 KiB was measured to cost "
        "more than it saves at 5 ms (broker CPU per order +17 %, the stack +12 %)."
    )

    # --- stream workers ---------------------------------------------------------------
    stream_event_loop: EventLoop = Field(
        EventLoop.UVLOOP, description="The workers' event loop (both of Faust's: the agents' and its "
        "consumer thread's). uvloop's transports cost the worker 2-13 % less CPU per order."
    )
    stream_linger_ms: int = Field(
        1, ge=0, description="Workers' producer linger: batches many small records per request."
    )
    stage_max_in_flight: int = Field(10000, ge=1, description="Concurrent tasks per stage.")
    local_handoff: bool = Field(
        True, description="The writer starts a work item on this worker's own stage as soon as "
        "its record is acknowledged, when this worker consumes the record's partition "
        "(streams/local_handoff.py): one fetch hop fewer per stage. The record still arrives "
        "and is acked once that task ended; false: every stage waits for its record."
    )
    best_price_interval_s: float = Field(
        5.0, ge=0, description="Least time between two bestPrice updates (PriceObserved) of a "
        "waiting limit order; 0 turns them off (benchmarks)."
    )
    commit_interval_s: float = Field(1.0, gt=0)
    session_timeout_s: float = Field(
        10.0, gt=0, description="How long a silent (killed) worker keeps its partitions."
    )
    worker_id: str | None = Field(
        None, description="A stable id of this worker, unique among the engine's workers: its "
        "static membership of the consumer group (`<ENGINE_ID>-<WORKER_ID>`), so a restarted "
        "worker takes its partitions back at once instead of after the dead one's session. "
        "A static member never leaves the group on a clean stop: its partitions move only "
        "after SESSION_TIMEOUT_S. Unset: dynamic membership."
    )
    log_level: str = "WARNING"

    # --- observability (telemetry/, docs/DESIGN.md "Observability") ------------------------
    log_format: LogFormat = Field(
        LogFormat.AUTO, description="json | text | auto: JSON lines unless stderr is a terminal."
    )
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="The stream worker's loopback /metrics and /health "
        "port; 0: a free port, logged at start (`oee run` picks one and prints it)."
    )
    projector_metrics_port: int = Field(
        0, ge=0, le=65535, description="The projector's loopback /metrics and /health port; "
        "0: a free port, logged at start (`oee run` picks one and prints it)."
    )
    otel_enabled: bool = Field(
        False, description="Export traces with OpenTelemetry (needs the `otel` extra; the "
        "standard OTEL_* variables configure the exporter; OTEL_SDK_DISABLED=true wins)."
    )

    # --- oee run (supervision of its children) ------------------------------------------
    run_restart_backoff_ms: int = Field(
        500, ge=0, description="oee run: wait before restarting a child that exited; doubles "
        "with each restart of that child in the last minute."
    )
    run_max_restarts: int = Field(
        5, ge=0, description="oee run: restarts of one child within a minute before it counts "
        "as crash-looping and everything stops."
    )

    # --- speed (issue 9): batching of the projector, fetch waits by consumer role ---------
    projector_linger_ms: int = Field(
        0, ge=0, description="The projector gathers records for up to this long after the "
        "first one before it commits them (rows and offsets in ONE transaction); 0: one "
        "transaction per fetch (which PROJECTOR_FETCH_MIN_BYTES already fills)."
    )
    projector_batch_events: int = Field(
        1000, ge=1, description="The projector commits at once when this many records are "
        "gathered, without waiting out PROJECTOR_LINGER_MS."
    )
    projector_fetch_min_bytes: int = Field(
        65536, ge=1, description="While events flow, the broker holds the projector's fetch "
        "until this many bytes are there or PROJECTOR_FETCH_MAX_WAIT_MS passed: the batch "
        "gathers at the broker in one request instead of a fetch per record landing (at 50 "
        "orders/s, against 1 byte and a 100 ms linger: projector CPU -47 %, broker -35 % per "
        "event, lag p99 181 -> 161 ms)."
    )
    market_view_fetch_min_bytes: int = Field(
        16384, ge=1, description="While market records flow, the broker holds the fetch of a "
        "market follower that only serves a view (the API's quotes, price board and token "
        "listings; the random feed; the API's event fan-out while no stream listens) until "
        "this many bytes are there or "
        "MARKET_VIEW_FETCH_MAX_WAIT_MS passed, instead of answering each record landing. The "
        "workers' followers price swaps and quotes: they keep the FETCH_* pacing."
    )
    market_view_fetch_max_wait_ms: int = Field(
        100, ge=0, description="While market records flow, the most a view's market fetch "
        "waits to gather MARKET_VIEW_FETCH_MIN_BYTES (how stale the API's quotes may be under "
        "load); once idle it long-polls FETCH_IDLE_MAX_WAIT_MS, answered at the first record."
    )
    projector_fetch_max_wait_ms: int = Field(
        100, ge=0, description="While events flow, the most the projector's fetch waits to "
        "gather PROJECTOR_FETCH_MIN_BYTES; once idle it long-polls FETCH_IDLE_MAX_WAIT_MS and "
        "the first event after a pause is answered at once."
    )

    # --- the API's honest answer to a command (issue 10, accept) --------------------------
    command_accept_budget_ms: int = Field(
        3000, ge=100, le=60_000, description="How long after a POST the broker may append its "
        "command (the command's acceptBy); appended later, the worker rejects it and the POST "
        "answers 503. The POST waits for the acknowledgement this long plus "
        "COMMAND_ACK_SLACK_MS, then answers 504 outcome_unknown."
    )
    command_ack_slack_ms: int = Field(
        1000, ge=0, le=60_000, description="How long past the acceptBy a POST still waits for "
        "the broker's acknowledgement (which tells 201 from 503) before answering 504."
    )
    command_stall_ms: int = Field(
        3000, ge=50, description="Kafka counts as down (POSTs answer 503 at once, nothing sent) "
        "once it acknowledged nothing for this long while a command waits, or a delivery "
        "failed. Default: the accept budget (a command waiting that long in silence would "
        "hardly be appended in time anyway); lower detects a dead broker sooner, at the risk "
        "of refusing commands while a loaded broker pauses."
    )
    command_breaker_cooldown_ms: int = Field(
        1000, ge=50, description="How long POSTs answer 503 at once after Kafka was found "
        "down, before one POST is let through to probe it."
    )

    # --- issue 14 part 3: the tamper-evident log (chain checkpoints) --------------------------
    chain_checkpoint_events: int = Field(
        1000, ge=1, description="events per partition between two chain checkpoints")
    chain_checkpoint_interval_s: float = Field(
        60.0, gt=0, description="at most this long between two checkpoints of a partition "
                                "that got events")

    # --- recovery: snapshots of the order writer's states (issue 10, bounded recovery) ----
    snapshot_every_events: int = Field(
        10_000, ge=0, description="The order writer snapshots a partition's states to "
        "orders.snapshots (order_snapshot v2: the orders in flight, the ended ids, every "
        "order's chain head) once this many records were appended to it since the last "
        "snapshot, so a worker taking the partition folds only what came after; 0: never "
        "(snapshots are still read)."
    )
    snapshot_interval_s: float = Field(
        60.0, gt=0, description="... or this long after the last snapshot, if anything was "
        "appended since."
    )
    snapshot_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, description="The largest snapshot record: "
        "orders.snapshots' max.message.bytes and the snapshot producer's request size "
        "(an ended order takes 16 bytes, an order in flight its events)."
    )

    # --- twap (issue 14 part 2): parent orders that release market slices over time ----------
    parent_min_interval_s: int = Field(
        1, ge=1, description="The shortest intervalS the API accepts for a twap or dca order "
        "(seconds between two slices)."
    )

    @model_validator(mode="after")
    def _auth_off_on_the_loopback_only(self) -> Settings:
        if self.auth_mode is AuthMode.OFF and not _is_loopback(self.api_host):
            raise ValueError(f"AUTH_MODE=off is for local experiments: API_HOST must be a "
                             f"loopback address, not {self.api_host!r}")
        return self

    @field_validator("replication_factor")
    @classmethod
    def _replicas_of_the_local_cluster(cls, value: int, info: ValidationInfo) -> int:
        return value or min(3, int(info.data.get("kafka_brokers", 1)))

    def as_environment(self) -> dict[str, str]:
        """These settings as environment variables, to hand to a child process unchanged."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                env[name.upper()] = str(value)
        return env

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        """Backoff before attempt 2, 3, ...: base, 2*base, 4*base (exponential)."""
        return tuple(self.retry_base_delay_ms * 2**i for i in range(self.max_attempts - 1))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
