"""The edge's way into Kafka: edge commands produced to `orders.commands`, acknowledged.

Consumes `ExecuteOrder` / `CancelOrder`; produces Avro records keyed by order id (so one
order's commands share a partition) and answers with the broker's `RecordMetadata` only once
every in-sync replica has the record (acks=all). One idempotent `AIOKafkaProducer` per
process, opened by the app's lifespan and passed down; Faust's producer is not used here
because it is not idempotent outside exactly-once mode (docs/pitfalls.md 7).

An idempotent aiokafka producer can wedge after a broker blip: every send then fails with
`OutOfOrderSequenceNumber` until the process restarts (aiokafka#1017). A fresh producer gets a
fresh producer id and sequence numbers, so on that error the bus replaces its producer and
sends once more. That resend cannot duplicate anything the order agent would act on twice:
the agent ignores an `ExecuteOrder` for an existing order and a second cancel decides nothing.

What a failed send means, for the edge's answer (`api.acceptance`):
- `CommandNotSent`: the record never left this process (the breaker knows Kafka is down,
  `api.breaker`; or the producer refused it before queueing it): it cannot be executed.
- `CommandNotDelivered`: the record was queued but no acknowledgement came within the
  delivery timeout, or the batch failed: it may have been appended. The bus does not guess.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber
from aiokafka.structs import RecordMetadata

from api.breaker import Admission, Breaker, BreakerState
from domain.orders.commands import Command, EdgeCommand
from schemas import headers as record_headers

log = logging.getLogger(__name__)

# No linger: aiokafka keeps one produce request in flight per broker, so records arriving
# meanwhile batch up by themselves under load; a linger would only delay a lone POST
# (measured on one local broker: ~5 ms per acknowledged send with 2 ms linger, ~1.5 ms without).
LINGER_MS: Final = 0
# How long a POST waits for the acknowledgement before giving up on knowing the outcome. An
# idempotent producer never expires a batch (it retries until the broker answers), so without
# this bound a POST would hang for as long as the broker is away. The API sets it to its
# accept budget plus a slack (settings COMMAND_ACCEPT_BUDGET_MS, COMMAND_ACK_SLACK_MS).
DEFAULT_DELIVERY_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 5.0
SOURCE: Final = "/oee/api"  # the records' ce_source


class CommandEncoder(Protocol):
    def encode_command(self, command: Command) -> bytes: ...


class CommandSender(Protocol):
    """What the routers need: send one edge command and return once Kafka holds it."""

    async def send(self, command: EdgeCommand) -> RecordMetadata: ...


class CommandNotDelivered(Exception):
    """Kafka did not acknowledge the command: it may have been appended, or may still be."""


class CommandNotSent(Exception):
    """The command never left this process: Kafka cannot execute it."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CommandTopicUnavailable(Exception):
    """The bus cannot open: Kafka does not know the commands topic (or cannot be reached)."""


class Producer(Protocol):
    """The part of `AIOKafkaProducer` the bus uses (a seam for tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[RecordMetadata]: ...


ProducerFactory = Callable[[], Producer]


def idempotent_producer(bootstrap_servers: str, client_id: str = "oee-api") -> ProducerFactory:
    """How the bus makes (and remakes) its producer."""

    def make() -> Producer:
        producer: Producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
        )
        return producer

    return make


class CommandBus:
    """One producer, one topic; `async with` opens it, `send` awaits the broker's ack."""

    def __init__(
        self,
        make_producer: ProducerFactory,
        topic: str,
        encoder: CommandEncoder,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        breaker: Breaker | None = None,
    ) -> None:
        self._make_producer = make_producer
        self._topic = topic
        self._encoder = encoder
        self._delivery_timeout_s = delivery_timeout_s
        self.breaker = breaker or Breaker(time.monotonic, stall_s=1.0, cooldown_s=1.0)
        self._producer: Producer | None = None
        self._replacing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CommandBus:
        producer = await self._started()
        try:
            await self._check_topic(producer)
        except BaseException:
            await _stop(producer)
            raise
        self._producer = producer
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer)  # flushes whatever is still in flight, if the broker lets it
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def send(self, command: EdgeCommand) -> RecordMetadata:
        """Produce `command`; return its coordinates once every in-sync replica has it.

        Raises CommandNotSent at once, sending nothing, while the breaker holds Kafka down."""
        admission = self.breaker.admit()
        if admission is None:
            raise CommandNotSent(f"Kafka is unreachable ({self.breaker.why}); nothing was sent",
                                 self.breaker.retry_after_s())
        try:
            metadata = await self._send(command)
        except (CommandNotSent, CommandNotDelivered) as exc:
            self._failed(admission, exc)
            raise
        except BaseException:
            self.breaker.abandoned(admission)
            raise
        self._acked(admission)
        return metadata

    def _acked(self, admission: Admission) -> None:
        if self.breaker.state is not BreakerState.CLOSED:
            log.warning("Kafka acknowledges again: commands are sent again")
        self.breaker.acked(admission)

    def _failed(self, admission: Admission, error: Exception) -> None:
        was = self.breaker.state
        self.breaker.failed(admission, str(error))
        if self.breaker.state is not was:
            log.warning("Kafka counts as down (%s): POSTs answer 503 at once", error)

    async def _send(self, command: EdgeCommand) -> RecordMetadata:
        key, value = command.order_id.encode(), self._encoder.encode_command(command)
        headers = record_headers.build(command, SOURCE)
        producer = self._current()
        try:
            return await self._deliver(producer, key, value, headers)
        except OutOfOrderSequenceNumber:
            log.warning("producer wedged on OutOfOrderSequenceNumber (aiokafka#1017): replacing it")
        try:
            return await self._deliver(await self._replace(producer), key, value, headers)
        except OutOfOrderSequenceNumber as exc:
            message = "Kafka refused the command twice (out of order sequence)"
            raise CommandNotDelivered(message) from exc

    async def _deliver(self, producer: Producer, key: bytes, value: bytes,
                       headers: list[tuple[str, bytes]]) -> RecordMetadata:
        delivery: asyncio.Future[RecordMetadata] | None = None
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                delivery = await producer.send(self._topic, value, key=key, headers=headers)
                # Shielded: a timed-out POST must not cancel the record's future inside the
                # producer's batch; the record may well be delivered a moment later.
                metadata: RecordMetadata = await asyncio.shield(delivery)
                return metadata
        except TimeoutError:
            if delivery is None:  # still waiting to be queued (metadata, buffer): never sent
                raise CommandNotSent(f"Kafka could not take the command within "
                                     f"{self._delivery_timeout_s:g}s; nothing was sent") from None
            delivery.add_done_callback(_report_late_outcome)
            raise CommandNotDelivered(
                f"no acknowledgement from Kafka within {self._delivery_timeout_s:g}s"
            ) from None
        except OutOfOrderSequenceNumber:
            raise
        except KafkaError as exc:
            if delivery is None:
                raise CommandNotSent(f"the producer refused the command: {exc!r}") from exc
            raise CommandNotDelivered(f"Kafka refused the command: {exc!r}") from exc

    async def _check_topic(self, producer: Producer) -> None:
        """Fetch the topic's metadata now: the first POST does not pay for it, and a missing
        topic stops the start-up with a clear message instead of failing every POST later.
        """
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                await producer.partitions_for(self._topic)
        except (TimeoutError, KafkaError) as exc:
            raise CommandTopicUnavailable(
                f"Kafka has no topic {self._topic!r} (after {self._delivery_timeout_s:g}s): "
                "create the topics with `oee topics create`"
            ) from exc

    def _current(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the command bus is not open: use `async with CommandBus(...)`")
        return self._producer

    async def _replace(self, broken: Producer) -> Producer:
        """Swap in a fresh producer, once, however many sends failed on the broken one."""
        async with self._replacing:
            if self._producer is broken:
                try:
                    self._producer = await self._started()
                except KafkaError as exc:
                    raise CommandNotSent(f"cannot reconnect to Kafka: {exc!r}") from exc
                task = asyncio.create_task(self._retire(broken))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
        return self._current()

    async def _started(self) -> Producer:
        producer = self._make_producer()
        await producer.start()
        return producer

    @staticmethod
    async def _retire(producer: Producer) -> None:
        await _stop(producer)  # in the background: a wedged producer may take its time


async def _stop(producer: Producer) -> None:
    """Stop `producer`, bounded: an idempotent producer's flush waits for a broker forever."""
    try:
        await asyncio.wait_for(producer.stop(), _STOP_TIMEOUT_S)
    except (TimeoutError, KafkaError) as exc:
        log.warning("the producer did not stop cleanly: %r", exc)


def _report_late_outcome(delivery: asyncio.Future[RecordMetadata]) -> None:
    """What became of a command whose POST was answered 504 (and retrieve its exception)."""
    if delivery.cancelled():
        return
    error = delivery.exception()
    if error is None:
        log.warning("a command answered 504 was delivered late (its acceptBy decides): %s",
                    delivery.result())
    else:
        log.warning("a command answered 504 was not delivered: %r", error)
