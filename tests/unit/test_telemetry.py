"""Observability's pure parts: record headers, the work context, log lines, the worker's
metrics (with the writer and in-memory ports) and the consumer's health."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from domain.orders.commands import SwapConfirmed
from domain.work import QuoteRoute
from schemas.headers import RecordHeaders, build
from streams.metrics import MeteredOutbox, WorkerMetrics
from streams.order_agent import OrderWriter
from telemetry.consumer import ConsumerProgress
from telemetry.context import TraceContext, bound, current
from telemetry.logs import OrderContextFilter, RedactingJsonFormatter, logging_config, redact
from tests.unit.stream_fakes import FakeClock, FakeOutbox, FakeStates, execute_order
from tests.unit.test_order_writer import CONFIG, route_found

ROOT = Path(__file__).resolve().parents[2]


def test_headers_name_the_record_without_decoding_it() -> None:
    command = execute_order("o-1", "cmd-1")
    with bound(trace=TraceContext.new(), order_id="o-1", correlation_id="corr-1") as context:
        headers = RecordHeaders.parse(build(command, "/oee/api"))

    assert (headers.type, headers.id, headers.order_id, headers.source) == (
        "ExecuteOrder", "cmd-1", "o-1", "/oee/api")
    assert headers.correlation_id == "corr-1"  # the context's, as the command has none
    assert headers.time == command.issued_at.isoformat()
    assert context.trace is not None and headers.trace is not None
    assert headers.trace == context.trace  # the current span is the consumer's parent


def test_a_work_item_gets_a_stable_id_and_a_new_trace_outside_any_context() -> None:
    work = QuoteRoute(order_id="o-2", attempt=2, token_in="a", token_out="b", amount_in=5)
    first, second = RecordHeaders.parse(build(work, "w")), RecordHeaders.parse(build(work, "w"))

    assert first.id == second.id == "o-2/2/QuoteRoute"
    assert first.trace is not None and second.trace is not None
    assert first.trace.trace_id != second.trace.trace_id


def test_records_without_headers_or_with_garbage_parse_to_nothing() -> None:
    assert RecordHeaders.parse(None) == RecordHeaders()
    assert RecordHeaders.parse([]) == RecordHeaders()
    odd = RecordHeaders.parse([("traceparent", b"not-a-trace"), ("x-other", b"1")])
    assert odd == RecordHeaders()


def test_traceparent_round_trips_and_rejects_the_all_zero_ids() -> None:
    trace = TraceContext.new()
    assert TraceContext.parse(trace.traceparent) == trace
    assert TraceContext.parse(f"00-{'0' * 32}-{'1' * 16}-01") is None
    assert TraceContext.parse(f"00-{'a' * 32}-{'b' * 16}-00") == TraceContext(
        "a" * 32, "b" * 16, sampled=False)


def test_bound_context_is_restored_after_the_block() -> None:
    with bound(order_id="o-3", seq=4):
        assert (current().order_id, current().seq) == ("o-3", 4)
    assert current().order_id is None


def json_line(record_extra: dict[str, object] | None = None,
              message: str = "hello") -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingJsonFormatter(
        "%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"},
        timestamp="time"))
    handler.addFilter(OrderContextFilter("worker"))
    logger = logging.getLogger("tests.telemetry.json")
    logger.handlers, logger.propagate = [handler], False
    logger.warning(message, extra=record_extra)
    line: dict[str, Any] = json.loads(stream.getvalue())
    return line


def test_a_log_line_about_an_order_is_json_with_its_ids() -> None:
    with bound(order_id="o-4", correlation_id="c-4", seq=7, trace=TraceContext.new()):
        line = json_line()

    assert line["message"] == "hello" and line["level"] == "WARNING"
    assert (line["orderId"], line["correlationId"], line["seq"]) == ("o-4", "c-4", 7)
    assert len(line["traceId"]) == 32 and line["service"] == "worker"
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


def test_explicit_extra_wins_over_the_context() -> None:
    with bound(order_id="o-5"):
        assert json_line({"orderId": "o-6"})["orderId"] == "o-6"


def test_secrets_never_reach_a_log_line() -> None:
    line = json_line(message="connect postgresql://oee:hunter2@db/x with api_key=sk_live_1 "
                             "and Authorization: Bearer tok.en, X-API-Key: k-123")
    text = json.dumps(line)
    for secret in ("hunter2", "sk_live_1", "tok.en", "k-123"):
        assert secret not in text
    assert redact("password='p@ss' token=abc") == "password='***' token=***"


def test_auto_format_is_json_unless_a_terminal() -> None:
    assert "Json" in str(logging_config("INFO", "auto", "api")["formatters"]["oee"]["()"])
    assert "Text" in str(logging_config("INFO", "text", "api")["formatters"]["oee"]["()"])


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_the_worker_measures_stages_and_the_lifecycle_from_the_events_it_appends() -> None:
    registry, clock, outbox = CollectorRegistry(), FakeClock(), FakeOutbox()
    metrics = WorkerMetrics(registry)
    writer = OrderWriter(FakeStates(), MeteredOutbox(outbox, metrics), CONFIG, clock,
                         observe=metrics.loaded)
    await writer.handle(0, execute_order("o-7"))
    clock.advance(seconds=0.2)
    decided = await writer.handle(0, route_found("o-7"))
    signature = decided.work[0].signature  # type: ignore[union-attr]
    clock.advance(seconds=2.5)
    confirmed = SwapConfirmed(command_id="conf", order_id="o-7", issued_at=clock.now, attempt=1,
                              signature=signature, amount_out=1, slot=1)
    await writer.handle(0, confirmed)
    await writer.handle(0, confirmed)  # a duplicate decides nothing and counts nothing

    found = samples(registry)
    assert found[("oee_order_lifecycle_seconds_count", (("outcome", "confirmed"),))] == 1
    assert found[("oee_order_lifecycle_seconds_sum", (("outcome", "confirmed"),))] == 2.7
    assert found[("oee_order_stage_seconds_sum", (("status", "routing"),))] == 0.2
    assert found[("oee_order_transitions_total", (("status", "confirmed"),))] == 1
    assert found[("oee_order_events_total", (("type", "OrderConfirmed"),))] == 1
    assert ("oee_order_lifecycle_seconds_bucket", (("le", "3.0"), ("outcome", "confirmed"))) \
        in found


def test_a_consumer_is_healthy_once_assigned_and_stalled_when_records_wait_too_long() -> None:
    now = [0.0]
    ends = {("t", 0): 10}
    progress = ConsumerProgress("g", lambda t, p: ends.get((t, p)), stall_after_s=30,
                                clock=lambda: now[0])
    assert progress.health()[0] is False  # no assignment yet

    progress.assigned([("t", 0)])
    progress.consumed("t", 0, 4)
    assert progress.health() == (True, {"assigned": True, "partitions": 1, "lag": 5,
                                        "stalled": []})
    now[0] = 31.0
    ok, detail = progress.health()
    assert not ok and detail["stalled"] == ["t[0]"]
    progress.consumed("t", 0, 9)
    assert progress.health()[0] is True  # caught up: no lag, nothing stalled
    progress.revoked()
    assert progress.health()[0] is False


def test_tracing_off_costs_nothing_and_never_loads_opentelemetry() -> None:
    script = (
        "import sys\n"
        "from telemetry.tracing import NO_TRACING, tracer_of\n"
        "from telemetry.context import TraceContext\n"
        "tracer = tracer_of(False, 'api')\n"
        "assert tracer is NO_TRACING and tracer.span('a') is tracer.span('b')\n"
        "parent = TraceContext.new()\n"
        "child = tracer.continued(parent)\n"
        "assert child.trace_id == parent.trace_id and child.span_id != parent.span_id\n"
        "import os; os.environ['OTEL_SDK_DISABLED'] = 'true'\n"
        "assert tracer_of(True, 'api') is NO_TRACING  # the SDK's own switch wins\n"
        "from oee.api_bootstrap import bootstrap\n"
        "from oee.settings import Settings\n"
        "bootstrap(Settings(), read_side=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    assert loaded == "[]"
