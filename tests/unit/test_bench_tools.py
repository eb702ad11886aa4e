"""The benchmark's own pieces that need no stack: the limit baseline's script of records per
order (what the engine decides for a happy market order) and the human table."""

from __future__ import annotations

import asyncio

from bench.baseline_pipeline import _script
from bench.orders_bench import Run
from bench.summary import table
from domain.orders import ExecuteOrder, RouteFound, SwapConfirmed
from domain.orders.events import TERMINAL_EVENTS
from domain.work import ExecuteSwap, QuoteRoute


def test_the_baseline_moves_the_engines_records_of_a_happy_market_order() -> None:
    script = _script()
    assert list(script) == [ExecuteOrder, RouteFound, SwapConfirmed]
    events = [event for step in script.values() for event, _ in step.events]
    assert len(events) == 6 and [event.seq for event in events] == list(range(1, 7))
    assert isinstance(events[-1], TERMINAL_EVENTS)
    assert [type(step.work) for step in script.values()] == [QuoteRoute, ExecuteSwap,
                                                            type(None)]


def test_the_table_puts_the_engine_next_to_its_limit_baseline() -> None:
    report = {"orders": [{
        "scenario": "throughput",
        "median": {"orders_per_s": 150.0, "post_p99_ms": 30.0, "e2e_p50_ms": 40.0,
                   "e2e_p99_ms": 90.0},
        "baseline": {"median_orders_per_s": 1500.0, "engine_percent": 10.0},
    }], "venues": {"lowest_venue_share": 0.26, "runs": [{}, {}, {}]}}
    lines = table(report).splitlines()
    assert "150.0 orders/s" in lines[2] and "e2e p50/p99 40.0/90.0 ms" in lines[2]
    assert "1500.0 orders/s" in lines[3] and "engine = 10.0 % of it" in lines[3]
    assert "lowest venue share 26% over 3 seeds" in lines[4]


def test_the_recovery_fill_copies_valid_chained_histories_under_new_ids() -> None:
    import itertools
    import uuid

    from bench.recovery_bench import (
        FoldedByFill,
        _event_id,
        copies,
        histories,
        open_histories,
        templates,
    )
    from domain.orders.ids import event_id
    from schemas.chain import ChainCheck
    from schemas.codec import Codec
    from streams.event_store import StoredRecord
    from domain.orders.status import TERMINAL
    from streams.partition_fold import fold_partition

    ended, header = templates(histories(3), 40)
    still_open, _ = templates(open_histories(3), 10)
    made = list(itertools.islice(copies(ended, still_open, 0.3, header, 5), 200))
    records = [StoredRecord(n, copy.key, value) for n, (copy, value) in enumerate(
        (copy, value) for copy in made for value in copy.values)]
    codec, chain = Codec.load(), ChainCheck()
    for record in records:
        assert record.value is not None
        event = codec.decode_event(record.value)
        assert event.event_id == event_id(event.order_id, event.seq)
        chain.add(event.order_id, event.seq, codec.chain_link(record.value), "t", 0,
                  record.offset)
    folded = fold_partition("t[0]", records, codec.decode_envelope)

    assert chain.broken == [] and chain.unchained == 0 and len(chain.heads) == 200
    assert folded.problems == () and folded.states.heads == chain.heads
    # The states the fill builds (one partition here) are the fold's.
    by_fill = FoldedByFill()
    for copy in made:
        by_fill.add(0, copy)
    built = by_fill.states({0: len(records), **{p: 0 for p in range(1, 12)}})[0]
    assert 0 < len(built.orders) < 200 and set(built.orders) == {
        o for o, s in folded.states.orders.items() if s.status not in TERMINAL}
    assert len(built.terminal) == 200 - len(built.orders)
    assert built.all_heads() == chain.heads
    some = str(uuid.uuid4())
    assert _event_id(some.encode(), 7).decode() == event_id(some, 7)


def test_a_cpu_variant_names_settings_that_are_validated_and_typed() -> None:
    import pytest

    from bench.cpu_per_order import parse_variant

    assert parse_variant("long-poll:FETCH_IDLE_MAX_WAIT_MS=5,STREAM_EVENT_LOOP=asyncio") == (
        "long-poll", {"fetch_idle_max_wait_ms": 5, "stream_event_loop": "asyncio"})
    assert parse_variant("defaults") == ("defaults", {})
    with pytest.raises(ValueError):
        parse_variant("bad:FETCH_IDLE_MAX_WAIT_MS=soon")


async def test_the_load_client_reopens_a_keep_alive_connection_the_server_closed() -> None:
    import asyncio

    from bench.http_client import ConnectionPool

    requests: list[bytes] = []

    async def answer_once_then_close(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter) -> None:
        # Like uvicorn with an idle keep-alive connection: one answer, then the server hangs up.
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        requests.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_once_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, ConnectionPool("127.0.0.1", port, 1) as client:
        first = await client.post("/api/orders/execute", {"n": 1})
        second = await client.post("/api/orders/execute", {"n": 2})

    assert (first.status, second.status) == (201, 201)
    assert requests == [b'{"n":1}', b'{"n":2}']  # each sent once, the second on a new connection


def test_the_table_shows_each_roles_memory_after_the_last_run() -> None:
    report = {"orders": [{
        "scenario": "light",
        "median": {"orders_per_s": 10.0, "post_p99_ms": 9.0, "e2e_p50_ms": 70.0,
                   "e2e_p99_ms": 120.0},
        "runs": [{"rss_mb": {"worker": 300.0}},
                 {"rss_mb": {"worker": 181.4, "broker": 612.0, "api": 140.2}}],
    }]}
    assert table(report).splitlines()[3] == (
        "  RSS MiB after the run    api 140, broker 612, worker 181")


def test_resident_memory_is_read_per_role_from_proc() -> None:
    import os

    from bench.proc_cpu import rss_mb_by_role

    resident = rss_mb_by_role(os.getpid())
    assert 1 < resident["bench"] < 4096  # this interpreter: a few dozen MiB


def test_broker_requests_are_summed_over_versions_and_counted_per_order() -> None:
    from bench.pipeline_counts import per_order, request_counts

    report = ("kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Fetch,version=16"
              ":Count=700\n"
              "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Fetch,version=12"
              ":Count=50\n"
              "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,version=9"
              ":Count=300\n")
    after = request_counts(report)
    assert after == {"Fetch": 750, "Produce": 300}
    assert per_order({"Fetch": 350, "Produce": 300}, after, orders=100) == {"Fetch": 4.0}


def test_the_terminal_watcher_reads_type_and_order_from_headers_or_decodes() -> None:
    from types import SimpleNamespace
    from typing import Any

    from bench.orders_bench import terminal_order
    from schemas import headers
    from schemas.codec import Codec

    codec = Codec.load()
    confirmed = _script()[SwapConfirmed].events[-1]
    accepted = _script()[ExecuteOrder].events[0]

    def record(event_and_status: Any, with_headers: bool) -> Any:
        event, status = event_and_status
        return SimpleNamespace(headers=headers.build(event, "/test") if with_headers else None,
                               key=b"k", value=codec.encode_event(event, status=status))

    def undecodable(value: bytes) -> Any:
        raise AssertionError("a record with headers was decoded")

    order_id = confirmed[0].order_id
    assert terminal_order(record(confirmed, True), undecodable) == order_id
    assert terminal_order(record(accepted, True), undecodable) is None
    assert terminal_order(record(confirmed, False), codec.decode_event) == order_id
    assert terminal_order(record(accepted, False), codec.decode_event) is None
    claim: Any = SimpleNamespace(headers=[("oee-claim", b"1")], key=None, value=b"host:1")
    assert terminal_order(claim, undecodable) is None


def test_a_side_by_side_summary_compares_medians_of_every_shared_figure() -> None:
    from bench.ab import figures, summary

    def run(orders_per_s: float, total: float) -> dict[str, object]:
        return {"defaults": {"median_orders_per_s": orders_per_s,
                             "median_cpu_ms_per_order": {"total": total},
                             "runs": [{"orders_per_s": orders_per_s}]},
                "ok": True, "label": "x"}

    assert figures(run(40.0, 50.0)) == {"defaults.median_orders_per_s": 40.0,
                                        "defaults.median_cpu_ms_per_order.total": 50.0}
    table = summary({"A": [run(40.0, 50.0), run(30.0, 60.0), run(35.0, 55.0)],
                     "B": [run(50.0, 40.0), run(45.0, 45.0), run(60.0, 35.0)]})
    rate = table["defaults.median_orders_per_s"]
    assert (rate["median_A"], rate["median_B"], rate["B/A"]) == (35.0, 50.0, 1.429)
    assert table["defaults.median_cpu_ms_per_order.total"]["B/A"] == 0.727
    assert summary({"A": [run(1.0, 1.0)], "B": []}) == {}


async def test_a_following_client_waits_for_its_orders_end_and_gives_up_after_a_while() -> None:
    run = Run()
    run.finished("ended-before", 1.0)
    await asyncio.wait_for(run.terminal("ended-before", 5), 1)  # seen first: no wait
    waiting = asyncio.create_task(run.terminal("ends-later", 5))
    await asyncio.sleep(0)
    assert not waiting.done()
    run.finished("ends-later", 2.0)
    await asyncio.wait_for(waiting, 1)
    await run.terminal("never-ends", 0.01)  # returns after its timeout, without raising
    assert run.followed == {} and run.finished_at == {"ended-before": 1.0, "ends-later": 2.0}
