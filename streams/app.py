"""The one Faust app: every topic, agent and consumer group of the stream workers, wired here.

The Faust shell of the application layer: agents are thin `async for` loops that decode each
record (bytes) into a command or work item and hand it to the writer or a stage, which talk to
Kafka and PostgreSQL only through the adapters built here (`KafkaOutbox`, `OrderStates`,
`SimulatedChain`). The only broad `except` is in these loops: a record that cannot be
processed is dead-lettered with the error, because an exception escaping a Faust agent would
ack the record and drop it silently (docs/pitfalls.md 1). The order writer's agent consumes without
automatic acks: `CommandFlow` acks each record once everything it caused is durable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import faust.utils.venusian
from faust.types import TP, Message

from domain.market import Market
from domain.orders.commands import Command, ExecuteOrder, from_millis
from domain.orders.decide import ExecutionPolicy
from domain.orders.state import OrderState
from domain.work import ExecuteSwap, QuoteRoute, Work
from oee.settings import Settings
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool
from infra.fetch_pacing import FetchPacing
from infra.schema_registry import (
    registered_checkpoint_writer,
    registered_claim_writer,
    registered_codec,
    registered_snapshot_codec,
)
from infra.topics import LOG_APPEND_TIME
from schemas.checkpoints import Checkpoint
from schemas.codec import Codec
from schemas.headers import RecordHeaders
from schemas.snapshots import SnapshotCodec
from streams.chain import ChainPolicy, SimulatedChain
from streams.command_flow import CommandFlow, Inbound
from streams.consumer_tuning import set_fetch_pacing
from streams.event_store import EventStoreReader
from streams.event_producer import RenewingProducer, idempotent
from streams.faust_tables import ImmediateTableManager
from streams.execution_stage import ExecutionStage
from streams.in_flight import InFlight
from streams.local_handoff import HandingOutbox, LocalStages
from marketdata.follower import MarketFollower
from marketdata.view import MarketView
from streams.order_agent import OrderWriter, WriterConfig
from streams.acks import AckChain
from streams.checkpoints import Checkpoints
from streams.order_states import OrderStates, PartitionStates
from streams.outbox import KafkaOutbox
from streams.metrics import MeteredOutbox, WorkerMetrics
from streams.ports import Delivery
from streams.routing_stage import RoutingStage, VenueLatency
from streams.snapshots import SnapshotStore, SnapshotWriter
from streams.slice_prices import SlicePricer
from streams.timeline import Timeline
from streams.trigger_stage import TriggerStage
from telemetry import task_dump
from telemetry.consumer import ConsumerProgress
from telemetry.context import WorkContext, set_current
from telemetry.http import MetricsServer
from telemetry.tracing import tracer_of

log = logging.getLogger(__name__)

# How often a worker heartbeats to its group's coordinator. A survivor learns that a dead
# member's session ran out (a rebalance) only from the answer to its next heartbeat, so half
# the interval, on average, is part of every takeover; one small request each time.
HEARTBEAT_S = 0.5


def utc_now() -> datetime:
    return datetime.now(UTC)


class Engine:
    """The worker's composition root: every stage built once, resources opened at start."""

    def __init__(self, app: faust.App, settings: Settings, database_url: str,
                 wire: Wire, timeline: Timeline) -> None:
        s = settings
        self.app, self.settings, self.codec = app, settings, wire.codec
        self.timeline = timeline
        self.ready = asyncio.Event()
        self._starting: asyncio.Future[None] | None = None
        self._following: asyncio.Future[None] | None = None
        self._reporting: set[asyncio.Future[None]] = set()
        self.market = MarketView(Market.default(s.market_seed))
        self.market_feed = MarketFollower(settings, self.market, self.codec)
        self.pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=8, open=False,
            kwargs={"options": f"-c search_path={s.db_schema}", "autocommit": True},
        )
        # Every record the engine produces (events, claims, work items, reports, timers,
        # impacts, checkpoints, dead letters) goes through one idempotent producer
        # (streams.event_producer), not Faust's: the event store needs idempotence, and one
        # producer sends whatever is pending in one request to the broker where two sent
        # two (measured: produce requests per order, docs/DESIGN.md).
        self.producer = RenewingProducer(idempotent(
            s.kafka_bootstrap_servers or "", f"{s.engine_id}-writer", s.stream_linger_ms))
        self.checkpoints = (None if wire.checkpoint_value is None else Checkpoints(
            s.topics.events, self._publish_checkpoint, every_events=s.chain_checkpoint_events,
            every_s=s.chain_checkpoint_interval_s))
        self._checkpoint_value = wire.checkpoint_value
        self._checkpoint_tasks: set[asyncio.Future[None]] = set()
        self.outbox = KafkaOutbox(self.producer, s.topics, self.codec,
                                  checkpoints=self.checkpoints)
        self.tracer = tracer_of(s.otel_enabled, "worker")
        self.registry = CollectorRegistry()
        self.metrics = WorkerMetrics(self.registry)
        self.progress = ConsumerProgress(s.engine_id, self._highwater).register(self.registry)
        reader = EventStoreReader(s.kafka_bootstrap_servers or "", s.topics.events)
        claimant = f"{socket.gethostname()}:{os.getpid()}"  # who, in a claim record's header
        claim_value = wire.claim_value
        snapshots = None if wire.snapshots is None else SnapshotStore(
            s.kafka_bootstrap_servers or "", s.topics.snapshots, wire.snapshots,
            s.snapshot_max_bytes)
        self.states = OrderStates(reader, self.codec.decode_envelope, on_loaded=self._on_loaded,
                                  claim=lambda p: self.outbox.claim(p, claimant,
                                                                    claim_value(claimant, p)),
                                  on_dropped=self.drop_orders, snapshots=snapshots,
                                  on_folded=self._on_folded)
        self.snapshots = None if snapshots is None else SnapshotWriter(
            self.states.loaded, snapshots, lambda e, st: self.codec.encode_event(e, status=st),
            claimant, s.snapshot_every_events, s.snapshot_interval_s)
        # The trigger stage's book is fed by the writer (the states of this worker's
        # partitions) and evaluated on the market changes the follower reports.
        self.triggers = TriggerStage(self.market, self.outbox.command, utc_now,
                                     best_price_interval_s=s.best_price_interval_s)
        self.market_feed.subscribe(self.triggers.on_market_change)
        policy = ExecutionPolicy(max_attempts=s.max_attempts, retry_delays_ms=s.retry_delays_ms)
        # The writer hands a work item straight to this worker's stage when it consumes the
        # item's partition (streams.local_handoff); the record still goes through Kafka.
        self.local = LocalStages(self._start_locally)
        writer_outbox = HandingOutbox(self.outbox, self.local) if s.local_handoff else self.outbox
        self.writer = OrderWriter(self.states, MeteredOutbox(writer_outbox, self.metrics),
                                  WriterConfig(policy, timedelta(milliseconds=s.stall_timeout_ms)),
                                  utc_now, observe=self._observe,
                                  before_fire=SlicePricer(self.market))
        latency = VenueLatency(s.venue_latency_min_ms, s.venue_latency_max_ms,
                               random.Random(s.market_seed))
        self.routing = RoutingStage(self.market, latency, self.outbox,
                                    InFlight(s.stage_max_in_flight), utc_now)
        chain = SimulatedChain(self.pool, ChainPolicy(
            s.market_seed, s.transient_failure_rate, s.confirm_delay_min_ms,
            s.confirm_delay_max_ms))
        self.execution = ExecutionStage(chain, self.market, self.outbox,
                                        InFlight(s.stage_max_in_flight), utc_now, self.outbox)
        self.flow = CommandFlow(self.writer, self._rewind, self.triggers.forget)
        # The stages' records, by (topic, partition): each acked once its task ended.
        self.stage_acks: AckChain[tuple[str, int]] = AckChain(self._stage_unacked)

    async def _start_locally(self, work: Work) -> Delivery:
        topics = self.settings.topics
        if isinstance(work, QuoteRoute):
            task, topic = await self.routing.accept(work), topics.routing
        else:
            task, topic = await self.execution.accept(work), topics.execution
        self.metrics.handed_locally.labels(topic).inc()
        return task

    def _on_loaded(self, partition: int, states: list[OrderState]) -> None:
        self.writer.on_loaded(partition, states)

    def _on_folded(self, partition: int, states: PartitionStates, last_offset: int) -> None:
        if self.checkpoints is not None:  # the chain's checkpoints start from the fold's heads
            self.checkpoints.seed(partition, states.heads, last_offset,
                                  -1 if states.epoch is None else states.epoch, states.terminal)

    def _publish_checkpoint(self, checkpoint: Checkpoint) -> None:
        task = asyncio.ensure_future(self._write_checkpoint(checkpoint))
        self._checkpoint_tasks.add(task)
        task.add_done_callback(self._checkpoint_tasks.discard)

    async def _write_checkpoint(self, checkpoint: Checkpoint) -> None:
        assert self._checkpoint_value is not None
        try:  # a lost checkpoint costs nothing but the pin: the next one covers it
            await (await self.outbox.checkpoint(checkpoint.partition,
                                                self._checkpoint_value(checkpoint)))
        except Exception:  # noqa: BLE001 - logged, never fatal to the writer
            log.exception("chain checkpoint of partition %d not written", checkpoint.partition)

    async def tick_checkpoints(self) -> None:
        """The time-based half of the checkpoints (every CHAIN_CHECKPOINT_INTERVAL_S)."""
        if self.checkpoints is None:
            return
        while True:
            await asyncio.sleep(min(1.0, self.settings.chain_checkpoint_interval_s))
            self.checkpoints.tick()

    def drop_orders(self, order_ids: set[str]) -> None:
        """Orders whose states this worker dropped (their partition left, or moved on while
        it was revoked): no timers, no trigger, no metrics for them any more."""
        self.writer.forget(order_ids)
        self.triggers.forget(order_ids)
        self.metrics.forget(order_ids)

    def _observe(self, state: OrderState, command: Command | None) -> None:
        self.triggers.track(state, command)
        self.metrics.loaded(state, command)

    def _highwater(self, topic: str, partition: int) -> int | None:
        try:
            end = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # noqa: BLE001 - no consumer (yet): the end is simply unknown
            return None
        return int(end) if end is not None else None

    def _received(self, message: Message, command: Command | None = None) -> None:
        """Count the record and make its ids and trace the context of what it causes (the
        records produced, the log lines, the stage task it spawns)."""
        self.metrics.records.labels(message.topic).inc()
        self.progress.consumed(message.topic, message.partition, message.offset)
        headers = RecordHeaders.parse(cast(Any, message.headers))
        order_id = headers.order_id or (message.key.decode("utf-8", "replace")
                                        if isinstance(message.key, bytes) else None)
        correlation = headers.correlation_id
        if command is not None:  # an order's correlation id is the command that created it
            correlation = command.correlation_id or correlation or (
                command.command_id if isinstance(command, ExecuteOrder) else None)
        set_current(WorkContext(order_id=order_id, correlation_id=correlation,
                                trace=self.tracer.continued(headers.trace)))

    async def serve_metrics(self) -> None:
        """The worker's loopback /metrics and /health until the worker stops."""
        async with MetricsServer(self.registry, self.progress.health,
                                 self.settings.worker_metrics_port, "worker"):
            await asyncio.Event().wait()

    def begin(self) -> asyncio.Future[None]:
        """Open the pool and follow the market, once; resolves when the engine is ready.

        Called from the worker's first rebalance callback, before it joins the group: Faust
        starts the app's tasks only after the first assignment's recovery, and waiting for
        them put the pool's connection and the market's catch-up after every (re)start's join.
        """
        if self._starting is None:
            self.timeline.flush()  # Faust's worker configured logging before it started us
            self._following = asyncio.ensure_future(self.market_feed.run())
            self._starting = asyncio.ensure_future(self.start())
        return self._starting

    async def follow_market(self) -> None:
        """The market follower `begin` started, until it stops (or this is cancelled)."""
        self.begin()
        assert self._following is not None
        await self._following

    async def start(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        await self.market_feed.wait_caught_up()  # never route on the seed market of a restart
        self.ready.set()
        self.timeline.mark("engine ready (database pool open, market caught up)")

    def rebalanced(self, partitions: set[int]) -> None:
        """The group assigned these partitions of orders.commands: move the states (only
        what moved) and time the takeover until their states are ready."""
        new = partitions - self.states.held()
        self.states.rebalance(partitions)
        self.timeline.assigned(partitions, new)
        report = asyncio.ensure_future(self._report_ready(partitions))
        self._reporting.add(report)
        report.add_done_callback(self._reporting.discard)

    async def _report_ready(self, partitions: set[int]) -> None:
        await self.states.settled()
        self.timeline.ready(partitions)

    async def stop(self) -> None:
        """Flush what the worker produced. (The pool stays open: a stage still running must
        not fail, and dead-letter its work, for a closed pool.)"""
        await self.producer.stop()
        if self.snapshots is not None:
            await self.snapshots.store.close()

    async def consume_commands(self, stream: Any) -> None:
        """The writer's loop over a no-ack stream: the flow acks each record once what it
        caused is durable (an exception escaping here would not be acked, but log it)."""
        await self.ready.wait()
        async for event in stream.events():
            message = event.message
            record = Inbound(message.partition, message.offset, event.ack,
                             partial(self._dead_letter, message))
            command: Command | Exception
            try:
                command = _as_appended(self.codec.decode_command(_value(message)), message)
            except Exception as exc:  # dead-lettered by the flow, in offset order
                command = exc
            self._received(message, command if not isinstance(command, Exception) else None)
            try:
                with self.tracer.span("order-writer", topic=message.topic):
                    await self.flow.receive(record, command)
            except Exception:
                log.exception("orders.commands[%d]@%d could not be handled",
                              message.partition, message.offset)
            self.timeline.first_record()

    async def _dead_letter(self, message: Message, error: BaseException) -> Delivery:
        self.metrics.dead_letters.labels(message.topic).inc()
        return await self.outbox.dead_letter(message.topic, message.partition, message.offset,
                                             message.key, message.value, error)

    async def _rewind(self, partition: int, offset: int) -> None:
        # seek_wait, not seek: Faust's `seek` calls aiokafka from this thread while the
        # consumer's own thread may be iterating the same fetch buffers (a KeyError in
        # `fetched_records` that crashed the worker); seek_wait runs it on that thread
        # (docs/pitfalls.md 15).
        await self.app.consumer.seek_wait({TP(self.settings.topics.commands, partition): offset})

    async def route(self, message: Message) -> Delivery:
        work = self.codec.decode_work(_value(message))
        if not isinstance(work, QuoteRoute):
            raise TypeError(f"routing stage got {type(work).__name__}")
        claimed = self.local.claim(work)  # started already, when the writer handed it over
        return claimed if claimed is not None else await self.routing.accept(work)

    async def execute(self, message: Message) -> Delivery:
        work = self.codec.decode_work(_value(message))
        if not isinstance(work, ExecuteSwap):
            raise TypeError(f"execution stage got {type(work).__name__}")
        claimed = self.local.claim(work)
        return claimed if claimed is not None else await self.execution.accept(work)

    async def consume(self, stream: Any, handle: Callable[[Message], Awaitable[Delivery]]
                      ) -> None:
        """Run `handle` per record of a stage (it starts the record's task and returns it);
        ack the record once that task ended, in offset order (`stage_acks`), so a worker
        that dies mid-task leaves the record to be consumed again, not to the stall
        watchdog. Dead-letter whatever `handle` cannot process."""
        await self.ready.wait()
        async for event in stream.events():
            msg = event.message
            self._received(msg)
            try:
                with self.tracer.span("stage", topic=msg.topic):
                    outcome = await handle(msg)
            except Exception as exc:  # the outermost loop: record it, never drop it silently
                self.metrics.dead_letters.labels(msg.topic).inc()
                outcome = await self.outbox.dead_letter(msg.topic, msg.partition, msg.offset,
                                                        msg.key, msg.value, exc)
            self.stage_acks.track((msg.topic, msg.partition), msg.offset, outcome, event.ack)

    def _stage_unacked(self, source: tuple[str, int], offset: int,
                       error: BaseException) -> None:
        topic, partition = source
        log.warning("%s[%d]@%d: its task did not end (%r); it and what follows stay unacked "
                    "until the partition is assigned again (consumed again then)", topic,
                    partition, offset, error)


def _as_appended(command: Command, message: Message) -> Command:
    """`command` with the broker's append time of its record, which its accept-by deadline is
    judged against (`domain.orders.decide`). Only a LogAppendTime counts: a CreateTime is
    the producer's own clock, no arbiter (`infra.topics` sets LogAppendTime on the topic)."""
    if message.timestamp_type != LOG_APPEND_TIME or message.timestamp is None:
        return command
    # Faust hands the record's milliseconds over as float seconds: round back to them.
    return replace(command, appended_at=from_millis(round(message.timestamp * 1000)))


def _value(message: Message) -> bytes:
    if message.value is None:
        raise ValueError("a record without a value (tombstone) is not a command or work item")
    return message.value


@dataclass(frozen=True, slots=True)
class Wire:
    """How the worker writes records: its codec (schema ids from the registry) and the value
    of its claim records (schemas.claims) and snapshots (schemas.snapshots)."""

    codec: Codec
    claim_value: Callable[[str, int], bytes]
    checkpoint_value: Callable[[Checkpoint], bytes] | None = None  # None: no checkpoints
    snapshots: SnapshotCodec | None = None  # None: no snapshots read or written

    @classmethod
    def registered(cls, settings: Settings) -> Wire:
        """Every schema registered with the registry (the one call that needs it)."""
        return cls(registered_codec(settings), registered_claim_writer(settings),
                   registered_checkpoint_writer(settings), registered_snapshot_codec(settings))


def create_app(settings: Settings, database_url: str, wire: Wire | None = None,
               timeline: Timeline | None = None) -> faust.App:
    """The Faust app of the stream workers. Only the registry is asked (for schema ids,
    unless `wire` is given); Kafka and PostgreSQL connect when the worker starts. `timeline`
    (default: one starting now) is told each phase of the start-up and of each rebalance."""
    set_fetch_pacing(FetchPacing.of(settings))
    app = faust.App(
        settings.engine_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,  # docs/pitfalls.md 8: Faust's web server binds 0.0.0.0 and serves /table
        topic_allow_declare=False,  # topics are created by `oee topics create`, never implicitly
        topic_disable_leader=True,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        # Static membership: a restarted worker rejoins as itself and gets its partitions back
        # without waiting out its dead predecessor's session (aiokafka group_instance_id).
        consumer_group_instance_id=(f"{settings.engine_id}-{settings.worker_id}"
                                    if settings.worker_id else None),
        broker_heartbeat_interval=min(HEARTBEAT_S, settings.session_timeout_s / 3),
        producer_linger=settings.stream_linger_ms / 1000,
        producer_acks=-1,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        # Faust's default is `<app id>-data` in the current directory: one stray directory
        # per app id wherever a worker (or a test) happens to start.
        datadir=str(settings.data_dir / "faust" / settings.engine_id),
        # Joins the group without Faust's fixed 1 s pause for tables (we declare none).
        TableManager=ImmediateTableManager,
    )
    engine = Engine(app, settings, database_url, wire or Wire.registered(settings),
                    timeline or Timeline(time.time()))
    with _untagged():
        _wire(app, engine)
    return app


@contextmanager
def _untagged() -> Iterator[None]:
    """Faust tags each agent and task it is given for venusian's scanner (`app.discover`),
    which this app never runs. A tag reads its caller's source, and the first one maps the real
    path of every module loaded: 0.1 s of each worker's start (0.2 s under load) for nothing."""
    tags = faust.utils.venusian
    attach = tags.attach
    tags.attach = lambda *args, **kwargs: None
    try:
        yield
    finally:
        tags.attach = attach


def _wire(app: faust.App, engine: Engine) -> None:
    topics = engine.settings.topics

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, internal=False)

    @app.task  # type: ignore[untyped-decorator]
    async def start_engine() -> None:
        await engine.begin()
        await engine.writer.timers.run()

    @app.task  # type: ignore[untyped-decorator]
    async def dump_tasks_on_sigusr1() -> None:
        task_dump.install(asyncio.get_running_loop())

    @app.task  # type: ignore[untyped-decorator]
    async def tick_checkpoints() -> None:
        await engine.tick_checkpoints()

    @app.task  # type: ignore[untyped-decorator]
    async def serve_metrics() -> None:
        await engine.serve_metrics()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_market() -> None:
        await engine.follow_market()

    @app.task  # type: ignore[untyped-decorator]
    async def write_snapshots() -> None:
        await engine.ready.wait()
        if engine.snapshots is not None:
            await engine.snapshots.run()

    @app.task  # type: ignore[untyped-decorator]
    async def fire_triggers() -> None:
        await engine.ready.wait()  # never fire on the seed market of a restart
        await engine.triggers.run()

    @app.agent(topic(topics.commands), name="order-writer")
    async def order_writer(stream: faust.StreamT[bytes]) -> None:
        await engine.consume_commands(cast(Any, stream).noack())

    @app.agent(topic(topics.routing), name="routing-stage")
    async def routing_stage(stream: faust.StreamT[bytes]) -> None:
        await engine.consume(cast(Any, stream).noack(), engine.route)

    @app.agent(topic(topics.execution), name="execution-stage")
    async def execution_stage(stream: faust.StreamT[bytes]) -> None:
        await engine.consume(cast(Any, stream).noack(), engine.execute)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_engine(sender: Any, **_: Any) -> None:
        await engine.stop()

    # The group protocol is eager: every rebalance revokes all partitions, then assigns the
    # new set. The writer's states survive the revocation; the assignment says which
    # partitions really left (forgotten), which stayed (kept, unless another worker wrote to
    # them meanwhile) and which are new (claimed and folded).
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        engine.begin()
        engine.rebalanced({tp.partition for tp in assigned if tp.topic == topics.commands})
        engine.local.assigned((tp.topic, tp.partition) for tp in assigned
                              if tp.topic in (topics.routing, topics.execution))
        engine.progress.assigned((tp.topic, tp.partition) for tp in assigned)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        # The first call comes before the worker joins the group: the engine opens its
        # resources while it joins and folds, not after.
        engine.begin()
        engine.timeline.revoked()
        engine.local.revoked()
        engine.progress.revoked()
        # Records not acked yet are consumed again from the committed offset: re-deciding
        # them on the kept states decides nothing twice.
        engine.flow.revoke(tp.partition for tp in revoked if tp.topic == topics.commands)
        for tp in revoked:  # a stage's unacked records go to whoever is assigned them
            if tp.topic in (topics.routing, topics.execution):
                engine.stage_acks.reset((tp.topic, tp.partition))
