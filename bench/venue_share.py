"""`python -m bench venues`: which venue wins ordinary orders over minutes of the default feed.

Consumes the default settings (market seed, feed volatility, feed interval); produces the share
of SOL->USDC and USDC->SOL orders of 0.5 to 20 SOL that each venue won alone, and how many
the router split, over `minutes` of the random feed's walk. A split order is won by the venue
that carries the larger part of it (`won`), and counted under `split` as well. It runs the feed's own walk and
the engine's own router in process (both are pure), so the figure is the routing model's,
without the noise of a running stack. Goal (issue: a market worth routing): every venue wins
at least 20 % of these orders.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from domain.market import Market
from domain.routing import best_route
from domain.tokens import SOL, USDC
from oee.settings import Settings
from producers.random_walk import Walk, WalkConfig

ORDERS_PER_STEP = 2  # one each way
SOL_TENTHS = (5, 200)  # 0.5 .. 20 SOL


def venue_share(settings: Settings, minutes: float, seed: int = 1) -> dict[str, Any]:
    steps = int(minutes * 60_000 / settings.feed_interval_ms)
    config = WalkConfig(settings.feed_volatility_bps, settings.feed_listing_rate,
                        settings.feed_liquidity_rate)
    walk, rng, sizes = Walk(Market.default(settings.market_seed)), random.Random(seed), \
        random.Random(seed + 1)
    ids = (f"bench-{n}" for n in itertools.count())
    alone: Counter[str] = Counter()
    won: Counter[str] = Counter()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(steps):
        walk, _events = walk.step(rng, config, at, lambda: next(ids))
        market = walk.market
        sol = sizes.randint(*SOL_TENTHS) * 10**8
        usdc = sol * int(market.reference_price(SOL.mint) or 185) // 1000
        for mint_in, mint_out, amount in ((SOL.mint, USDC.mint, sol),
                                          (USDC.mint, SOL.mint, usdc)):
            legs = best_route(market, mint_in, mint_out, amount).legs
            alone[legs[0].venue if len(legs) == 1 else "split"] += 1
            won[max(legs, key=lambda leg: leg.amount_in).venue] += 1
    total = sum(alone.values())
    return {"minutes": minutes, "steps": steps, "orders": total,
            "alone": _shares(alone, total), "won": _shares(won, total)}


def _shares(counts: Counter[str], total: int) -> dict[str, float]:
    return {name: round(count / total, 3) for name, count in sorted(counts.items())}


def run_all(quick: bool = False) -> dict[str, Any]:
    settings = Settings()
    runs = [venue_share(settings, 1 if quick else 5, seed) for seed in (1, 2, 3)]
    return {"runs": runs,
            "lowest_venue_share": min(min(run["won"].values()) for run in runs)}
