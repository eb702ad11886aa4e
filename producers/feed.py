"""`python -m producers.feed` (`oee run` starts it): the market-data producer.

Consumes the Settings (FEED_MODE, FEED_INTERVAL_MS, FEED_VOLATILITY_BPS, FEED_LISTING_RATE,
FEED_LIQUIDITY_RATE, FEED_SCRIPT, MARKET_SEED); produces market events on `market.prices`
and `market.pools`:

- random: a seeded random walk, one step per interval, publishing a snapshot of every pool
  and now and then a listing or a liquidity change. It follows the market topics itself:
  it resumes from the market Kafka holds (not from the seed: a restart continues where the
  last run left the prices), and each step starts from the pools as published, so a
  confirmed swap's impact (published by the execution stage) carries into the walk;
- scripted: the events of FEED_SCRIPT on its timetable (see `producers.script`);
- off: nothing.

After a script (or with the feed off) the process stays up until it is stopped: `oee run`
would read a child that exits as a crash and start it again, replaying the script.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from domain.market import Market
from domain.tokens import TokenRegistry
from oee.settings import FeedMode, Settings
from infra.fetch_pacing import FetchPacing
from marketdata.follower import MarketFollower
from marketdata.view import MarketView
from producers.publisher import MarketPublisher
from producers.random_walk import Walk, WalkConfig
from producers.script import parse_script, play
from telemetry.logs import configure

log = logging.getLogger(__name__)


async def run_feed(settings: Settings, stop: asyncio.Event) -> None:
    """Publish what `settings.feed_mode` says until `stop` is set."""
    if settings.feed_mode is FeedMode.OFF:
        log.info("market feed off: publishing nothing")
        await stop.wait()
        return
    async with MarketPublisher.of(settings) as publisher:
        if settings.feed_mode is FeedMode.RANDOM:
            view = MarketView(Market.default(settings.market_seed))
            async with MarketFollower(settings, view, client_id="oee-feed-market",
                                      pacing=FetchPacing.market_view(settings)) as follower:
                await random_walk(settings, publisher, stop, view, follower.stats.applied)
        else:
            await scripted(settings, publisher)
            await stop.wait()


async def random_walk(settings: Settings, publisher: MarketPublisher,
                      stop: asyncio.Event, market: MarketView, history: int = 0,
                      clock: Callable[[], datetime] | None = None) -> None:
    """One walk step per `feed_interval_ms`, on a fixed cadence, until `stop` is set; each
    step from the pools `market` (followed from Kafka) holds then.

    `history`: how many market records the resumed market was folded from; it seeds the
    walk's randomness with the seed, so a restart does not replay the first run's shocks.
    """
    now = clock or _utc_now
    config = WalkConfig(settings.feed_volatility_bps, settings.feed_listing_rate,
                        settings.feed_liquidity_rate)
    # Its own stream of the seed: Market.default(seed) already drew from Random(seed).
    rng = random.Random(f"oee-feed/{settings.market_seed}/{history}")
    walk = Walk.resumed(market.current())
    new_id = _ids()
    loop = asyncio.get_running_loop()
    interval_s = settings.feed_interval_ms / 1000
    due = loop.time()
    while not stop.is_set():
        walk, events = walk.rebased(market.current()).step(rng, config, now(), new_id)
        try:
            await publisher.send(events)
        except KafkaError as exc:
            # Market data is superseded by the next step: no retry, a fresh producer instead.
            log.warning("market step not published (%r); renewing the producer", exc)
            await publisher.renew()
        # Fixed cadence; after a stall (a broker away) start afresh rather than burst.
        due = max(due + interval_s, loop.time())
        try:  # the cadence, not a synchronisation: wake at the next step or at `stop`
            await asyncio.wait_for(stop.wait(), max(0.0, due - loop.time()))
        except TimeoutError:
            pass


async def scripted(settings: Settings, publisher: MarketPublisher,
                   clock: Callable[[], datetime] | None = None) -> int:
    """Play FEED_SCRIPT once; return how many events it published."""
    if settings.feed_script is None:
        raise SystemExit("FEED_MODE=scripted needs FEED_SCRIPT (a JSON-lines file)")
    now = clock or _utc_now
    text = settings.feed_script.read_text(encoding="utf-8")
    script = parse_script(text, TokenRegistry.default(), now(), _ids())
    count = await play(script, publisher, now)
    log.info("market script %s played: %d events", settings.feed_script, count)
    return count


def _ids() -> Callable[[], str]:
    """Event ids unique across restarts of the feed: a run id and a counter."""
    run, counter = uuid.uuid4().hex[:12], itertools.count(1)
    return lambda: f"feed-{run}-{next(counter)}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # stop cleanly: the producer flushes
    await run_feed(settings, stop)


def main() -> None:
    settings = Settings()
    configure(settings.log_level, settings.log_format, "feed")
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
