"""Feeds the records of `orders.commands` to the order writer and acks them only once durable.

Consumes, from the Faust shell, each record's partition, offset, ack and decoded command (or
the error that kept it from decoding); produces decisions (through the writer), dead letters,
acks, and — when something a command caused did not reach the broker — a rewind.

Why a delivery has to be confirmed: Faust commits a consumed offset after flushing its
producer, but aiokafka's `flush()` only waits for the batches (`asyncio.wait`, it never
raises), and faust-streaming's `Consumer._commit_offsets` commits right after it: a batch the
broker refused was committed over, while the writer's in-memory state ran ahead of the store
and its next events for the order left a `seq` gap. So every output's future is kept
(`Decided.settled`), and a record is acked only when its own outputs and every earlier record's
of its partition are confirmed (`AckChain`, strictly in order: Faust's commit logic can step
over a single missing ack). Nothing past a failure is ever acked, so nothing past it is
committed.

Fail-stop of one partition on a failed delivery, chosen over crashing the worker: the chain
reports the first failed record; its partition is fenced at that offset (later records already
buffered are skipped, unacked), its states are dropped and folded again from the store once
every output still on its way has settled, and after a backoff (0.5 s doubling to 10 s while
it keeps failing) the consumer seeks back to the failed record, so it and everything after it
are decided again (the ones that did land decide nothing the second time). Faust delivers a
record only at or past its read offset and moves that offset with each record it delivers, so
a record of a batch fetched before the seek, delivered after it, puts the read offset past
the fenced record again and the re-fetched one would be dropped for good: a fenced partition
that gets such a record after its seek is sought once more. A crash would drop
every partition of the worker, need an outside supervisor, and a permanent refusal would make
it a crash loop; the rewind retries only the partition at fault and the others keep flowing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final

from domain.orders.commands import Command
from streams.acks import AckChain
from streams.order_agent import DeliveryFailed, OrderWriter
from streams.order_states import PartitionRevoked
from streams.ports import Delivery

log = logging.getLogger(__name__)

Seek = Callable[[int, int], Awaitable[None]]  # (partition, offset): consume from there again
Forget = Callable[[set[str]], None]  # orders whose state was dropped (the trigger book)
DeadLetter = Callable[[BaseException], Awaitable[Delivery]]

REWIND_FIRST_S: Final = 0.5
REWIND_MAX_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """One record of `orders.commands` as the shell hands it over."""

    partition: int
    offset: int
    ack: Callable[[], object]
    dead_letter: DeadLetter


@dataclass(slots=True)
class FlowStats:
    rewinds: int = 0  # partitions rewound after a failed delivery
    skipped: int = 0  # records skipped while their partition was rewinding


class CommandFlow:
    def __init__(self, writer: OrderWriter, seek: Seek, forget: Forget, *,
                 first_backoff_s: float = REWIND_FIRST_S) -> None:
        self._writer = writer
        self._first_backoff_s = first_backoff_s
        self._seek = seek
        self._forget = forget
        self._acks = AckChain(self._failed)
        self._fences: dict[int, int] = {}  # partition -> the offset it is rewound to
        self._sought: set[int] = set()  # fenced partitions whose consumer was sought back
        self._reseeking: set[int] = set()
        self._failures: dict[int, int] = {}  # partition -> rewinds since its last ack
        self._lock = asyncio.Lock()  # one record or one fail-stop at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = FlowStats()

    async def receive(self, record: Inbound, command: Command | Exception) -> None:
        """Decide (or dead-letter) one record; it is acked once all it caused is durable."""
        async with self._lock:
            if not self._admits(record):
                return
            try:
                outcome = await self._outcome(record, command)
            except PartitionRevoked as exc:  # not ours to decide: the new owner reads it again
                log.info("orders.commands[%d]@%d left unacked: %s", record.partition,
                         record.offset, exc)
                return
            self._acks.track(record.partition, record.offset, outcome,
                             lambda: self._acked(record))

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._fences.pop(partition, None)
            self._sought.discard(partition)
            self._failures.pop(partition, None)
            self._acks.reset(partition)

    def waiting(self, partition: int) -> int:
        """Records of `partition` decided but not acked yet."""
        return self._acks.waiting(partition)

    def _admits(self, record: Inbound) -> bool:
        fence = self._fences.get(record.partition)
        if fence is None:
            return True
        if record.offset != fence:
            self.stats.skipped += 1  # consumed again after the rewind
            if record.offset > fence and record.partition in self._sought:
                self._seek_again(record.partition, fence)
            return False
        del self._fences[record.partition]
        self._sought.discard(record.partition)
        return True

    def _seek_again(self, partition: int, offset: int) -> None:
        if partition in self._reseeking:
            return
        self._reseeking.add(partition)

        async def seek() -> None:
            try:
                if self._fences.get(partition) == offset:
                    await self._seek(partition, offset)
            except Exception:
                log.exception("could not rewind orders.commands[%d] to %d", partition, offset)
            finally:
                self._reseeking.discard(partition)

        self._spawn(seek())

    async def _outcome(self, record: Inbound, command: Command | Exception) -> Delivery | None:
        try:
            if isinstance(command, Exception):
                raise command
            return (await self._writer.handle(record.partition, command)).settled
        except DeliveryFailed as exc:  # the partition's rewind (already reported) re-decides it
            return _failed(exc)
        except PartitionRevoked:
            raise
        except Exception as exc:  # undecodable, quarantined, a bug: park it with why
            try:
                return await record.dead_letter(exc)
            except Exception as send_error:
                return _failed(send_error)

    def _acked(self, record: Inbound) -> None:
        record.ack()
        self._failures.pop(record.partition, None)

    def _failed(self, partition: int, offset: int, error: BaseException) -> None:
        log.error("orders.commands[%d]@%d: what it caused was not stored (%r); folding the "
                  "partition again and deciding again from there", partition, offset, error)
        self._fences[partition] = offset
        self._sought.discard(partition)
        self._spawn(self._fail_stop(partition, offset))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fail_stop(self, partition: int, offset: int) -> None:
        async with self._lock:
            if self._fences.get(partition) != offset:
                return  # revoked meanwhile
            self.stats.rewinds += 1
            self._forget(self._writer.fail_stop(partition, self._acks.reset(partition)))
        failures = self._failures[partition] = self._failures.get(partition, 0) + 1
        await asyncio.sleep(min(self._first_backoff_s * 2 ** (failures - 1), REWIND_MAX_S))
        while self._fences.get(partition) == offset:
            try:
                await self._seek(partition, offset)
                self._sought.add(partition)
                return
            except Exception:
                log.exception("could not rewind orders.commands[%d] to %d", partition, offset)
                await asyncio.sleep(REWIND_MAX_S)


def _failed(error: BaseException) -> Delivery:
    future: Delivery = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future
