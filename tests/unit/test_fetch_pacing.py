"""The pacing rule of `infra.fetch_pacing` and how `pace` applies it to a fetcher."""

from __future__ import annotations

import asyncio
from typing import Any

from infra.fetch_pacing import FetchPacing, WhileListened, pace

PACING = FetchPacing(busy_min_bytes=16384, busy_max_wait_ms=5, idle_max_wait_ms=100)


def test_a_busy_consumer_fetches_to_gather() -> None:
    assert PACING.next_fetch(busy=True) == (16384, 5)


def test_an_idle_consumer_fetches_to_be_answered_at_the_first_record() -> None:
    assert PACING.next_fetch(busy=False) == (1, 100)


def test_a_latency_consumer_keeps_one_byte_and_only_shortens_the_wait_while_busy() -> None:
    pacing = FetchPacing(busy_min_bytes=1, busy_max_wait_ms=100, idle_max_wait_ms=500)
    assert pacing.adaptive
    assert (pacing.next_fetch(busy=True), pacing.next_fetch(busy=False)) == ((1, 100), (1, 500))


def test_pacing_whose_busy_and_idle_fetches_are_alike_is_not_adaptive() -> None:
    for pacing in (FetchPacing(1, 100, 100), FetchPacing(0, 100, 100)):
        assert not pacing.adaptive
        assert pacing.next_fetch(busy=True) == pacing.next_fetch(busy=False) == (1, 100)


class FakeFetcher:
    """The two fields and the one coroutine of aiokafka's Fetcher that `pace` touches."""

    def __init__(self, results: list[bool]) -> None:
        self._fetch_min_bytes, self._fetch_max_wait_ms = 1, 100
        self._results = results
        self._records: dict[str, Any] = {}  # fetched, not yet consumed
        self.requests: list[Any] = []

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        self.requests.append(request)
        return self._results.pop(0)


def test_pace_sets_the_next_fetch_after_each_response_and_passes_its_result_on() -> None:
    fetcher = FakeFetcher([True, True, False])
    pace(fetcher, PACING)
    seen = []
    for request in ("r1", "r2", "r3"):
        brought = asyncio.run(fetcher._proc_fetch_request(None, 0, request))
        seen.append((brought, fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms))

    assert fetcher.requests == ["r1", "r2", "r3"]
    assert seen == [(True, 16384, 5), (True, 16384, 5), (False, 1, 100)]


def test_records_still_waiting_to_be_consumed_keep_an_empty_fetch_busy() -> None:
    fetcher = FakeFetcher([False, False])
    pace(fetcher, PACING)
    fetcher._records["orders.commands-0"] = object()
    asyncio.run(fetcher._proc_fetch_request(None, 0, "r1"))
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (16384, 5)

    fetcher._records.clear()  # consumed
    asyncio.run(fetcher._proc_fetch_request(None, 0, "r2"))
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 100)


def test_the_pacing_comes_from_the_settings_and_the_former_name_still_sets_the_idle_wait(
    monkeypatch: Any,
) -> None:
    from oee.settings import Settings

    assert FetchPacing.of(Settings()) == FetchPacing(1, 100, 500)
    monkeypatch.setenv("STREAM_FETCH_MAX_WAIT_MS", "250")
    monkeypatch.setenv("FETCH_BUSY_MAX_WAIT_MS", "250")
    pacing = FetchPacing.of(Settings())
    assert pacing == FetchPacing(1, 250, 250)
    assert not pacing.adaptive


def test_a_market_view_gathers_while_busy_and_keeps_the_idle_poll(monkeypatch: Any) -> None:
    """The API's and the feed's market followers serve a view, so they gather; a worker's
    follower prices swaps and keeps the latency pacing (`MarketFollower`'s default)."""
    from domain.market import Market
    from marketdata.follower import MarketFollower
    from marketdata.view import MarketView
    from oee.settings import Settings
    from schemas.codec import Codec

    settings = Settings()
    assert FetchPacing.market_view(settings) == FetchPacing(16384, 100, 500)
    monkeypatch.setenv("MARKET_VIEW_FETCH_MAX_WAIT_MS", "40")
    monkeypatch.setenv("FETCH_IDLE_MAX_WAIT_MS", "900")
    assert FetchPacing.market_view(Settings()) == FetchPacing(16384, 40, 900)
    view, codec = MarketView(Market.default()), Codec.load()
    assert MarketFollower(settings, view, codec)._pacing == FetchPacing.of(settings)
    gathering = MarketFollower(settings, view, codec, pacing=FetchPacing.market_view(settings))
    assert gathering._pacing == FetchPacing(16384, 100, 500)


def test_a_feed_gathers_while_nobody_listens_and_answers_at_once_while_somebody_does() -> None:
    listeners: list[str] = []
    pacing = WhileListened(lambda: bool(listeners), listened=FetchPacing(1, 100, 500),
                           unheard=FetchPacing(16384, 100, 500))
    assert pacing.adaptive
    assert pacing.next_fetch(busy=True) == (16384, 100)
    listeners.append("a stream")
    assert pacing.next_fetch(busy=True) == (1, 100)
    assert pacing.next_fetch(busy=False) == (1, 500)


def test_the_api_fan_out_paces_by_whether_a_stream_listens() -> None:
    from api.live.config import LiveConfig
    from api.live.fanout import Fanout
    from schemas.codec import Codec

    fanout = Fanout("127.0.0.1:9", "orders.events", Codec.load(), LiveConfig(),
                    FetchPacing(1, 100, 500), unheard=FetchPacing(65536, 100, 500))
    assert fanout._pacing.next_fetch(busy=True) == (65536, 100)
    with fanout.order_feed("o-1"):
        assert fanout._pacing.next_fetch(busy=True) == (1, 100)
        with fanout.all_feed(lambda message: True):
            assert fanout._pacing.next_fetch(busy=True) == (1, 100)
    assert fanout._pacing.next_fetch(busy=True) == (65536, 100)
    with fanout.all_feed(lambda message: True):
        assert fanout._pacing.next_fetch(busy=True) == (1, 100)
