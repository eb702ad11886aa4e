"""One order's hash chain recomputed from Kafka, for `GET /api/orders/{id}/events?verify=true`.

Consumes the order's partition of `orders.events` from the offset of its first event (as the
read model lists it) to the end seen at the start, through the writer fence and the codec;
produces a `ChainVerdict`: verified with the order's head hash, or the first broken link (seq,
topic/partition/offset, why). The same rule as `oee replay --verify` (`schemas.chain`), on the
bytes in Kafka, never on the read model it would otherwise trust. Starting mid-partition, the
fence learns the writer's epoch from the first record it reads: that is the order's first
event as the projector counted it, so a deposed writer's later records are still dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.chain import BrokenLink, ChainCheck
from schemas.codec import Codec, CodecError
from schemas.writer_fence import Fence, Verdict

FETCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    order_id: str
    events: int  # events checked
    unchained: int  # of them, written before the chain (no hashes)
    head: bytes | None  # the order's latest hash (None: broken, or never chained)
    broken: BrokenLink | None

    def as_json(self) -> dict[str, object]:
        return {"verified": self.broken is None, "events": self.events,
                "unchained": self.unchained,
                "head": None if self.head is None else self.head.hex(),
                "brokenAt": None if self.broken is None else self.broken.as_json()}


class KafkaChains:
    """Reads an order's events from Kafka and checks its chain (one consumer per call)."""

    def __init__(self, bootstrap_servers: str, topic: str, codec: Codec) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._codec = codec

    async def verify(self, order_id: str, partition: int, first_offset: int) -> ChainVerdict:
        chain = ChainCheck()
        tp = TopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False, fetch_max_bytes=FETCH_BYTES,
                                    max_partition_fetch_bytes=FETCH_BYTES)
        await consumer.start()
        try:
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.assign([tp])  # and sought at once (streams.event_store says why)
            consumer.seek(tp, first_offset)
            fence, key = Fence(), order_id.encode()
            while await consumer.position(tp) < end and not chain.broken:
                batches = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in batches.get(tp, []):
                    if record.offset >= end or chain.broken:
                        break
                    if fence.judge(record.offset, record.headers) is not Verdict.EVENT:
                        continue
                    if record.key == key:
                        self._check(chain, order_id, record.value or b"", partition,
                                    record.offset)
        finally:
            await consumer.stop()
        head = chain.heads.get(order_id)
        return ChainVerdict(order_id, chain.events, chain.unchained, head,
                            chain.broken[0] if chain.broken else None)

    def _check(self, chain: ChainCheck, order_id: str, value: bytes, partition: int,
               offset: int) -> None:
        try:
            event = self._codec.decode_event(value)
            link = self._codec.chain_link(value)
        except CodecError as error:
            chain.unreadable(order_id, self._topic, partition, offset, str(error))
            return
        chain.add(event.order_id, event.seq, link, self._topic, partition, offset)
