"""Metrics and readiness from the read model and Kafka: the JSON summary, the projector's
orders-by-status gauge, consumer-group lag, and `/ready` turning 503 when the projector falls
behind."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.order_histories import HistoryMaker, interleaved
from domain.orders import fold
from oee.api_bootstrap import Replacements, bootstrap
from oee.settings import Settings
from projections.metrics import ProjectorTelemetry
from projections.projector import ProjectorOptions, project, projection_group
from tests.integration.projection_support import produce

MAX_LAG = 100


@pytest.fixture
async def client(provisioned: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = bootstrap(provisioned, Replacements(max_projection_lag=MAX_LAG))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        yield http


async def test_the_summary_counts_the_read_model(
    client: httpx.AsyncClient, provisioned: Settings
) -> None:
    histories = list(HistoryMaker(seed=61).orders(300))
    total = await produce(provisioned, interleaved(histories))
    await project(provisioned, ProjectorOptions(until_end=True))
    states = [fold(history) for history in histories]
    statuses = Counter(str(state.status) for state in states)

    metrics = (await client.get("/api/metrics")).json()

    assert metrics["orders"] == {"total": 300, "byStatus": dict(statuses),
                                 "byType": {"market": 300}}
    confirmed, failed = statuses["confirmed"], statuses["failed"]
    assert metrics["successRate"] == round(confirmed / (confirmed + failed), 4)
    venues = Counter(s.decision.venue for s in states if s.decision is not None)
    assert {v: m["orders"] for v, m in metrics["venues"].items()} == dict(venues)
    assert sum(m["share"] for m in metrics["venues"].values()) == pytest.approx(1, abs=1e-3)
    life = metrics["lifecycleSeconds"]
    assert life["sampled"] == 300 and 0 < life["p50"] <= life["p99"]
    assert metrics["projector"]["lag"] == 0 and metrics["projector"]["projected"] == total


async def test_the_projector_counts_orders_by_status_from_its_own_fold(
    client: httpx.AsyncClient, provisioned: Settings
) -> None:
    first = list(HistoryMaker(seed=62).orders(60))
    await produce(provisioned, interleaved(first))
    await project(provisioned, ProjectorOptions(until_end=True))
    rest = list(HistoryMaker(seed=65).orders(40))
    total = await produce(provisioned, interleaved(rest))
    telemetry = ProjectorTelemetry(projection_group(provisioned))

    # A new projector: counts once at the start (60 orders), then folds 40 more.
    await project(provisioned, ProjectorOptions(until_end=True), telemetry=telemetry)

    text = generate_latest(telemetry.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    by_status = {s.labels["status"]: s.value for s in families["oee_orders"].samples}
    expected = Counter(str(fold(h).status) for h in first + rest)
    assert {k: v for k, v in by_status.items() if v} == dict(expected)
    assert by_status == {**dict.fromkeys(by_status, 0.0), **expected}
    applied = sum(s.value for s in families["oee_projector_events"].samples
                  if s.name == "oee_projector_events_total")
    assert applied == total  # the 40 new orders' events
    assert families["oee_projector_batch_seconds"].type == "histogram"
    # The same figures as the JSON summary, which reads the read model.
    summary = (await client.get("/api/metrics")).json()["orders"]["byStatus"]
    assert summary == dict(expected)
    lags = [s for s in families["oee_consumer_lag"].samples]
    assert lags and all(s.value == 0 and s.labels["group"] == projection_group(provisioned)
                        for s in lags)


async def test_consumer_group_lag_is_end_minus_committed(
    client: httpx.AsyncClient, provisioned: Settings
) -> None:
    total = await produce(provisioned, interleaved(HistoryMaker(seed=63).orders(50)))
    group = f"{provisioned.engine_id}-reader"
    tp = TopicPartition(provisioned.topics.events, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=provisioned.kafka_bootstrap_servers,
                                group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(1, "")})
    finally:
        await consumer.stop()

    lags = (await client.get("/api/metrics")).json()["consumerLag"]

    ours = [lag for lag in lags if lag["group"] == group]
    ends = await _end_offsets(provisioned)
    assert ours == [{"group": group, "topic": provisioned.topics.events,
                     "lag": ends[0] - 1, "partitions": 1}]
    assert sum(ends.values()) == total


async def test_ready_turns_503_when_the_projector_falls_behind(
    client: httpx.AsyncClient, provisioned: Settings
) -> None:
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
        "kafka": True, "postgres": True, "projector": True}

    await produce(provisioned, interleaved(HistoryMaker(seed=64).orders(40)))  # > MAX_LAG

    behind = await client.get("/ready")
    assert behind.status_code == 503
    checks = behind.json()["checks"]
    assert checks["projector"]["ok"] is False and checks["projector"]["lag"] > MAX_LAG
    await project(provisioned, ProjectorOptions(until_end=True))
    assert (await client.get("/ready")).status_code == 200


async def _end_offsets(settings: Settings) -> dict[int, int]:
    from projections.kafka_offsets import KafkaOffsets

    assert settings.kafka_bootstrap_servers
    async with KafkaOffsets(settings.kafka_bootstrap_servers) as kafka:
        return await kafka.end_offsets(settings.topics.events)
