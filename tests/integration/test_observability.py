"""Observability against the real stack: each process's /metrics (API, worker, projector)
parsed with prometheus_client's parser, their /health, and the headers of the records the
engine produced, read straight from Kafka.

One stream worker and the live projector run as processes (as `oee run` starts them, with
their loopback metrics ports set); two API instances run in-process.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from domain.market_events import PriceTick
from domain.tokens import SOL, USDC
from oee.settings import LogFormat, Settings
from producers.publisher import publish
from schemas.headers import RecordHeaders
from telemetry.context import TraceContext
from tests.harness import EventLog, edge, wait_until, workers
from tests.integration.projection_support import ProjectorProcess
from tests.integration.projection_support import wait_until as eventually

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and every family's type, by the official parser."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(port: int, path: str = "/metrics") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{port}{path}", timeout=5)


async def scraped_when(port: int, holds: Callable[[Samples], bool], what: str) -> Samples:
    found: Samples = {}

    async def check() -> bool:
        nonlocal found
        try:
            found = parse((await scrape(port)).text)[0]
        except httpx.TransportError:
            return False  # not listening yet
        return holds(found)

    await eventually(check, what, timeout=60)
    return found


async def test_each_process_exports_its_own_figures_and_every_record_carries_headers(
    provisioned: Settings, tmp_path: Path
) -> None:
    settings = provisioned.model_copy(update={"worker_metrics_port": free_port(),
                                              "projector_metrics_port": free_port(),
                                              "log_format": LogFormat.JSON})
    projector = ProjectorProcess(settings, tmp_path / "projector.log").start()
    trace = TraceContext.new()
    try:
        async with workers(settings) as started, EventLog(settings) as log, edge(settings) as api_a, \
                edge(settings) as api_b:
            posted = await api_a.post("/api/orders/execute", json=ORDER,
                                      headers={"traceparent": trace.traceparent})
            assert posted.status_code in (200, 201), posted.text
            order_id = posted.json()["orderId"]
            await wait_until(lambda: log.terminal(order_id) is not None, 90, "the order to end")

            worker = await scraped_when(
                settings.worker_metrics_port,
                lambda s: value(s, "oee_order_events_total", type="OrderConfirmed") == 1
                and value(s, "oee_worker_records_total", topic=settings.topics.execution) == 1,
                "the worker to count the confirmation and to consume the swap's record")
            projected = await scraped_when(
                settings.projector_metrics_port,
                lambda s: value(s, "oee_orders", status="confirmed") == 1,
                "the projector to count the confirmed order")
            worker_text = (await scrape(settings.worker_metrics_port)).text
            projector_text = (await scrape(settings.projector_metrics_port)).text
            health = [await scrape(port, "/health") for port in
                      (settings.worker_metrics_port, settings.projector_metrics_port)]
            text_a, text_b = (await api_a.get("/metrics")).text, (await api_b.get("/metrics")).text
    finally:
        projector.stop()
    # The worker logs JSON lines only; one says where its metrics are.
    lines = [json.loads(line) for line in started[0].log_path.read_text().splitlines() if line]
    assert any(line["service"] == "worker" and line["level"] == "WARNING" and
               f":{settings.worker_metrics_port}/metrics" in line["message"] for line in lines)

    # The worker: counters named _total that moved, real histograms with their buckets.
    _, worker_types = parse(worker_text)
    assert worker_types["oee_order_lifecycle_seconds"] == "histogram"
    assert value(worker, "oee_order_lifecycle_seconds_count", outcome="confirmed") == 1
    assert value(worker, "oee_order_lifecycle_seconds_bucket", outcome="confirmed",
                 le="+Inf") == 1
    assert value(worker, "oee_order_stage_seconds_count", status="routing") == 1
    assert value(worker, "oee_order_transitions_total", status="confirmed") == 1
    assert (value(worker, "oee_worker_records_total", topic=settings.topics.commands) or 0) >= 3
    # One worker consumes every stage partition: the writer handed both work items straight
    # to its stages (streams.local_handoff), and their records still came through.
    for stage_topic in (settings.topics.routing, settings.topics.execution):
        assert value(worker, "oee_worker_handed_locally_total", topic=stage_topic) == 1
        assert value(worker, "oee_worker_records_total", topic=stage_topic) == 1
    lags = {k: v for k, v in worker.items() if k[0] == "oee_consumer_lag"}
    assert lags and all(v == 0 for v in lags.values())
    assert all(dict(labels)["group"] == settings.engine_id for _, labels in lags)
    # The projector: the engine-wide count, from its fold.
    assert value(projected, "oee_orders", status="pending") == 0
    assert value(projected, "oee_projector_events_total", type="OrderAccepted") == 1
    assert "oee_projector_batch_seconds_bucket" in projector_text
    assert [h.status_code for h in health] == [200, 200]
    assert all(h.json()["assigned"] is True for h in health)
    # Each API instance: only its own requests; no global figure on either.
    a, a_types = parse(text_a)
    b, _ = parse(text_b)
    post = {"method": "POST", "route": "/api/orders/execute", "status": str(posted.status_code)}
    assert a_types["oee_http_request_duration_seconds"] == "histogram"
    assert value(a, "oee_http_request_duration_seconds_count", **post) == 1
    assert value(a, "oee_http_requests_total", **post) == 1
    assert value(b, "oee_http_requests_total", **post) is None
    assert not [name for name, _ in {**a, **b} if name.startswith("oee_orders")]

    # Headers, read straight from Kafka: every record of the order names itself, and the
    # POST's trace runs through the writer and both stages.
    records = await read_all(settings, [settings.topics.commands, settings.topics.events,
                                        settings.topics.routing, settings.topics.execution])
    ours = [(topic, RecordHeaders.parse(headers)) for topic, key, headers in records
            if key == order_id.encode()]
    assert {topic for topic, _ in ours} == {settings.topics.commands, settings.topics.events,
                                           settings.topics.routing, settings.topics.execution}
    unnamed = [(t, h) for t, h in ours
               if not (h.order_id == order_id and h.type and h.id and h.source and h.time)]
    assert not unnamed
    assert [h.type for t, h in ours if t == settings.topics.events] == log.types(order_id)
    events = [h for t, h in ours if t == settings.topics.events]
    assert {h.correlation_id for h in events} == {log.by_order[order_id][0].correlation_id}
    traced = [h for _, h in ours if h.trace is not None and h.trace.trace_id == trace.trace_id]
    assert {h.type for h in traced} >= {"ExecuteOrder", "OrderAccepted", "QuoteRoute",
                                        "RouteFound", "ExecuteSwap", "OrderConfirmed"}


async def test_market_events_carry_headers_too(provisioned: Settings) -> None:
    tick = PriceTick(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), venue=None,
                     base_mint=SOL.mint, quote_mint=USDC.mint, price=Decimal("150"))
    await publish(provisioned, [tick])

    records = await read_all(provisioned, [provisioned.topics.prices])

    [(_, _, headers)] = records
    parsed = RecordHeaders.parse(headers)
    assert (parsed.type, parsed.id, parsed.source) == ("PriceTick", tick.event_id, "/oee/feed")
    assert parsed.order_id is None and parsed.trace is not None


async def read_all(settings: Settings, topics: list[str]
                   ) -> list[tuple[str, bytes | None, list[tuple[str, bytes]]]]:
    """Every record of `topics`, from the beginning to the end offsets seen now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in topics
               for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        found: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = []
        behind = {tp for tp in tps if ends[tp] > starts[tp]}
        while behind:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                found.extend((tp.topic, r.key, list(r.headers)) for r in batch)
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - the topic is not yet known
    return consumer.partitions_for_topic(topic) or set()
