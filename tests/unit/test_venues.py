"""The venue registry: every registered venue keeps the whole `Venue`/`Pool` contract (math,
fee bounds, wire state, feed scaling), a venue that breaks it is refused when the registry is
built, and the routing stage and the API take their venue sets from the registry."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import api.queries
import streams.routing_stage
from domain.market import DEFAULT_REFERENCE_USD, Market
from domain.pools import FeeBounds, InsufficientLiquidity, Pool, Venue
from domain.price_bound import hop_bound
from domain.quotes import SPLIT
from domain.tokens import SOL, USDC
from domain.venues import VENUES, PoolState, UnknownVenue, VenueRegistry
from domain.venues.meteora import METEORA
from domain.venues.raydium import RAYDIUM, RaydiumPool
from streams.routing_stage import VenueLatency

SEEDS = {venue.name: venue.seed_pools(DEFAULT_REFERENCE_USD) for venue in VENUES}
# Every seed pool of every venue, in both directions: what the properties below range over.
HOPS = [(pool, mint) for pools in SEEDS.values() for pool in pools
        for mint in (pool.token_x.mint, pool.token_y.mint)]
hops = st.sampled_from(HOPS)
fractions_of_depth = st.integers(1, 10**6)  # millionths of what the pool holds of the token in


def depth_of(pool: Pool, mint_in: str) -> int:
    """About what the pool holds in value, in base units of `mint_in`."""
    value_y = pool.value_in_y()
    if mint_in == pool.token_y.mint:
        return value_y
    per_x = pool.spot_price(pool.token_x.mint)  # human y per x
    scale = Decimal(10) ** (pool.token_x.decimals - pool.token_y.decimals)
    return int(Decimal(value_y) / per_x * scale)


def test_the_registry_finds_each_venue_by_its_name() -> None:
    assert VENUES["raydium"] is RAYDIUM and VENUES["meteora"] is METEORA
    assert len(VENUES) == len(set(VENUES.names)) == len(list(VENUES))
    assert all(VENUES[name].name == name and name in VENUES for name in VENUES.names)
    assert "orca" not in VENUES
    with pytest.raises(UnknownVenue, match="orca"):
        VENUES["orca"]


@pytest.mark.parametrize("venue", list(VENUES), ids=lambda v: v.name)
def test_every_venue_implements_the_venue_and_pool_protocols(venue: Venue) -> None:
    assert isinstance(venue, Venue)
    pools = SEEDS[venue.name]
    assert pools, "every venue seeds the default market"
    for pool in pools:
        assert isinstance(pool, Pool) and isinstance(pool, venue.pool_type)
        assert pool.venue == pool.key.venue == venue.name


def test_the_default_market_is_every_venues_seed_pools() -> None:
    seeded = {pool.key: pool for pools in SEEDS.values() for pool in pools}
    assert {pool.key: pool for pool in Market.default().pools} == seeded
    assert Market.default().venues == tuple(sorted(VENUES.names))


@pytest.mark.parametrize("venue", list(VENUES), ids=lambda v: v.name)
def test_every_venue_rebuilds_its_pools_from_their_wire_state_and_only_its_own(
    venue: Venue,
) -> None:
    assert set(get_args(PoolState)) == {v.state_type for v in VENUES}
    others = [v for v in VENUES if v.state_type is not venue.state_type]
    for pool in SEEDS[venue.name]:
        state = pool.wire_state()
        assert type(state) is venue.state_type
        assert venue.pool_from(pool.token_x, pool.token_y, state) == pool
        for other in others:
            with pytest.raises(ValueError, match=f"{other.name} does not run"):
                other.pool_from(pool.token_x, pool.token_y, state)


@pytest.mark.parametrize("venue", list(VENUES), ids=lambda v: v.name)
def test_every_pool_declares_fee_bounds_strictly_between_zero_and_one(venue: Venue) -> None:
    for pool in SEEDS[venue.name]:
        bounds = pool.fee_bounds()
        assert isinstance(bounds, FeeBounds)
        assert 0 < bounds.lowest <= bounds.highest < 1  # the seed pools all charge a fee


@settings(max_examples=300, deadline=None)
@given(hop=hops, millionths=fractions_of_depth)
def test_no_swap_pays_less_fee_than_the_lowest_bound_nor_more_than_the_hop_bound(
    hop: tuple[Pool, str], millionths: int
) -> None:
    """The two facts `price_bound` rests on, for every venue: the fee is at least the lowest
    rate of the amount in, and the output never beats spot less that rate."""
    pool, mint_in = hop
    amount_in = max(1, depth_of(pool, mint_in) * millionths // 10**6)
    try:
        swap = pool.quote(mint_in, amount_in)
    except InsufficientLiquidity:
        return
    bounds = pool.fee_bounds()
    assert swap.fee >= bounds.lowest * amount_in
    # Rounding up in the pool's favour adds at most a unit per step of the curve (a bin), and
    # a step holds far more than a thousand units.
    assert swap.fee <= bounds.highest * amount_in + 1 + amount_in // 1_000
    token_in = pool.token_x if mint_in == pool.token_x.mint else pool.token_y
    token_out = pool.token_y if token_in is pool.token_x else pool.token_x
    paid = (Decimal(swap.amount_out).scaleb(-token_out.decimals)
            / Decimal(amount_in).scaleb(-token_in.decimals))
    # Spot prices are 18-digit truncations: price_bound widens by the same 1e-12.
    assert paid <= hop_bound(pool, mint_in) * Decimal("1.000000000001")


@settings(max_examples=100, deadline=None)
@given(hop=hops, bps=st.integers(-5_000, 5_000))
def test_scaling_liquidity_keeps_the_price_and_scales_the_value(
    hop: tuple[Pool, str], bps: int
) -> None:
    pool, _ = hop
    scaled = pool.scaled(bps)
    assert type(scaled) is type(pool) and scaled.key == pool.key
    mint = pool.token_x.mint
    assert abs(scaled.spot_price(mint) / pool.spot_price(mint) - 1) < Decimal("1e-9")
    ratio = Decimal(scaled.value_in_y()) / pool.value_in_y()
    assert abs(ratio - Decimal(10_000 + bps) / 10_000) < Decimal("1e-6")


@settings(max_examples=100, deadline=None)
@given(hop=hops, move_bps=st.integers(-2_000, 2_000))
def test_drifting_reprices_every_venue_and_decay_keeps_its_price(
    hop: tuple[Pool, str], move_bps: int
) -> None:
    pool, _ = hop
    mint = pool.token_x.mint
    target = pool.spot_price(mint) * (10_000 + move_bps) / 10_000
    moved = pool.repriced(target)
    assert abs(moved.spot_price(mint) / target - 1) < Decimal("0.0013")  # within a bin step
    assert moved.decayed().spot_price(mint) == moved.spot_price(mint)


def test_a_market_refuses_a_pool_of_an_unregistered_venue() -> None:
    class OrcaPool(RaydiumPool):
        __slots__ = ()

        @property
        def venue(self) -> str:
            return "orca"

    orca = OrcaPool(SOL, USDC, 10**12, 185 * 10**9)
    with pytest.raises(ValueError, match="unregistered venues: \\['orca'\\]"):
        Market.of([*Market.default().pools, orca])


# --- a venue that breaks the contract is refused when the registry is built -----------------


class _Renamed:
    """Raydium under another name (and, optionally, another pool type or state)."""

    def __init__(self, name: str, pool_type: Any = RaydiumPool, state_type: Any = None) -> None:
        self.name, self.pool_type = name, pool_type
        self.state_type = state_type or RAYDIUM.state_type

    def pool_from(self, *args: Any) -> Any:
        return RAYDIUM.pool_from(*args)

    def seed_pools(self, *args: Any) -> Any:
        return ()


def _without(member: str) -> type:
    """A pool class with every `Pool` member but `member`."""
    members = {name: None for name in vars(Pool) if not name.startswith("_") and name != member}
    return type("Incomplete", (), members)


def test_a_pool_without_fee_bounds_fails_when_the_registry_is_built() -> None:
    venue: Any = _Renamed("lifinity", pool_type=_without("fee_bounds"))
    with pytest.raises(TypeError, match="does not implement Pool: no \\['fee_bounds'\\]"):
        VenueRegistry((venue, METEORA))


def test_a_venue_without_a_wire_state_mapping_fails_when_the_registry_is_built() -> None:
    venue: Any = _Renamed("lifinity", pool_type=_without("wire_state"))
    with pytest.raises(TypeError, match="wire_state"):
        VenueRegistry((venue, METEORA))


def test_a_second_venue_of_an_existing_curve_shares_its_wire_state() -> None:
    orca: Any = _Renamed("orca")
    registry = VenueRegistry((RAYDIUM, METEORA, orca))
    assert registry["orca"].state_type is registry["raydium"].state_type


@pytest.mark.parametrize(
    ("venues", "reason"),
    [
        ((RAYDIUM, METEORA, _Renamed("raydium")), "unique"),
        ((_Renamed(SPLIT), METEORA), "routing outcome"),
        ((RAYDIUM,), "PoolState must list exactly"),  # Meteora's state has no venue left
        ((_Renamed("orca", state_type=FeeBounds), METEORA), "PoolState must list exactly"),
        ((RAYDIUM, METEORA, _Renamed("orca", state_type=FeeBounds)), "PoolState must list"),
    ],
    ids=["duplicate name", "named split", "state without venue", "state off the union",
         "state beyond the union"],
)
def test_an_inconsistent_registry_is_refused(venues: tuple[Any, ...], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        VenueRegistry(venues)


# --- the routing stage and the API take their venue sets from the registry --------------------


async def test_the_routing_stage_asks_every_registered_venue_once() -> None:
    assert streams.routing_stage.VENUES is VENUES

    class Counting(VenueLatency):
        asked = 0

        async def round_trip(self) -> None:
            Counting.asked += 1

    await Counting(0, 0, random.Random(1)).all_venues()
    assert Counting.asked == len(VENUES)


def test_the_api_venue_filter_is_the_registered_venues_and_split() -> None:
    assert api.queries.VENUES == (*VENUES.names, SPLIT)
    assert {"raydium", "meteora", "split"} <= set(api.queries.VENUES)


def test_fee_bounds_refuse_an_impossible_range() -> None:
    for lowest, highest in ((Fraction(-1, 100), Fraction(0)), (Fraction(1, 10), Fraction(1, 20)),
                            (Fraction(0), Fraction(1))):
        with pytest.raises(ValueError, match="fee bounds"):
            FeeBounds(lowest=lowest, highest=highest)
