"""schemas/market_event.avsc is the contract of market.prices and market.pools: the code
matches it, every market event survives the wire, and every committed version stays readable."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.market import Market
from domain.market_events import (
    MARKET_EVENT_TYPES,
    LiquidityChanged,
    PoolCreated,
    PoolSnapshot,
    PriceTick,
    snapshot_of,
)
from domain.tokens import SOL, USDT, Token
from domain.venues import VENUES
from domain.venues.raydium import ConstantProductState
from schemas.codec import MAGIC, Codec, UndecodableRecord, UnknownSchemaVersion
from schemas.errors import SchemaMismatch
from schemas.json_reader import json_reader
from schemas.versions import SchemaHistory, load_history
from tests.contract.avro_records import (
    SCHEMAS,
    NotInVersion,
    backward_incompatibilities,
    parsed,
    project,
    raw_schema,
    read,
    records,
    write,
)
from tests.contract.strategies import DECIMALS, TEXT, TIMES

NAME = "market_event"
CODEC = Codec.load()
T0 = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)

LONGS = st.integers(-(2**63), 2**63 - 1)
INTS = st.integers(-(2**31), 2**31 - 1)
TOKENS = st.builds(Token, symbol=TEXT, mint=TEXT, decimals=st.integers(0, 18))


def state_strategy(state_type: type[Any]) -> st.SearchStrategy[Any]:
    """Any wire state of one venue: every field over the whole range of its Avro type."""
    record = records(raw_schema(NAME))[f"oee.market.{state_type.__name__}"]
    ranges = {"int": INTS, "long": LONGS}
    return st.builds(state_type, **{
        re.sub("([A-Z])", r"_\1", field["name"]).lower(): ranges[field["type"]]
        for field in record["fields"]
    })


STATES = st.one_of(*(state_strategy(venue.state_type) for venue in VENUES))
BASE: dict[str, st.SearchStrategy[Any]] = {"event_id": TEXT, "occurred_at": TIMES}
POOL: dict[str, st.SearchStrategy[Any]] = {
    "venue": TEXT, "token_x": TOKENS, "token_y": TOKENS, "state": STATES,
}
EVENTS: dict[type[Any], st.SearchStrategy[Any]] = {
    PoolSnapshot: st.builds(PoolSnapshot, **BASE, **POOL),
    PriceTick: st.builds(PriceTick, **BASE, venue=st.none() | TEXT, base_mint=TEXT,
                         quote_mint=TEXT, price=DECIMALS),
    PoolCreated: st.builds(PoolCreated, **BASE, **POOL, liquidity_usd=DECIMALS),
    LiquidityChanged: st.builds(LiquidityChanged, **BASE, **POOL, liquidity_usd=DECIMALS,
                                previous_liquidity_usd=st.none() | DECIMALS),
}
TYPES = list(EVENTS)


def history_versions() -> list[int]:
    paths = SCHEMAS.glob(f"history/{NAME}.v*.avsc")
    return sorted(int(path.name.removesuffix(".avsc").rpartition(".v")[2]) for path in paths)


def branch(schema: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [b for b in schema["fields"][-1]["type"] if b["name"] == name]
    return found  # type: ignore[no-any-return]


# --- the code matches the contract ----------------------------------------------------------


def test_every_market_event_type_has_a_strategy_here() -> None:
    assert set(EVENTS) == set(MARKET_EVENT_TYPES)


def test_the_payload_union_holds_exactly_the_python_market_event_types() -> None:
    schema = raw_schema(NAME)
    assert schema["namespace"] == "oee.market"
    assert {b["name"] for b in schema["fields"][-1]["type"]} == {
        cls.__name__ for cls in MARKET_EVENT_TYPES}


def test_every_pool_fact_carries_exactly_the_registered_venues_states() -> None:
    schema = raw_schema(NAME)
    registered = {f"oee.market.{venue.state_type.__name__}" for venue in VENUES}
    for fact in ("PoolSnapshot", "PoolCreated", "LiquidityChanged"):
        (state,) = [f for f in branch(schema, fact)["fields"] if f["name"] == "state"]
        names = {b if isinstance(b, str) else f"oee.market.{b['name']}" for b in state["type"]}
        assert names == registered, fact


def test_a_pool_state_union_missing_a_curve_is_refused() -> None:
    schema = raw_schema(NAME)
    created = branch(schema, "PoolCreated")
    (state,) = [f for f in created["fields"] if f["name"] == "state"]
    state["type"] = [b for b in state["type"] if b != "oee.market.BinState"]
    with pytest.raises(SchemaMismatch, match="PoolCreated.state"):
        Codec(market=SchemaHistory(NAME, {1: schema}))


def test_a_market_schema_missing_a_field_is_refused() -> None:
    schema = raw_schema(NAME)
    tick = branch(schema, "PriceTick")
    tick["fields"] = [f for f in tick["fields"] if f["name"] != "quoteMint"]
    with pytest.raises(SchemaMismatch, match="quoteMint"):
        Codec(market=SchemaHistory(NAME, {1: schema}))


# --- the wire ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_market_event_type_round_trips(event_type: type[Any], data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])
    encoded = CODEC.encode_market_event(event)
    assert encoded[:2] == bytes((MAGIC, CODEC.market_version))
    assert CODEC.decode_market_event(encoded) == event


def test_every_pool_of_the_default_market_round_trips_and_rebuilds_exactly() -> None:
    for pool in Market.default(7).pools:
        snapshot = CODEC.decode_market_event(CODEC.encode_market_event(snapshot_of(pool, "e", T0)))
        assert isinstance(snapshot, PoolSnapshot)
        assert snapshot.pool() == pool


def test_a_token_the_domain_rejects_is_undecodable() -> None:
    record = {
        "eventId": "e", "occurredAt": T0, "schemaVersion": 1,
        "payload": ("oee.market.PoolSnapshot", {
            "venue": "raydium",
            "tokenX": {"symbol": "X", "mint": "x", "decimals": 40},
            "tokenY": {"symbol": "Y", "mint": "y", "decimals": 6},
            "state": ("oee.market.ConstantProductState",
                      {"reserveX": 1, "reserveY": 1, "feeNumerator": 25, "feeDenominator": 1}),
        }),
    }
    with pytest.raises(UndecodableRecord, match="decimals"):
        CODEC.decode_market_event(write(raw_schema(NAME), 1, record))


def test_garbage_and_records_of_an_unknown_version_are_refused_by_name() -> None:
    tick = PriceTick(event_id="e", occurred_at=T0, venue=None, base_mint="a", quote_mint="b",
                     price=Decimal(1))
    with pytest.raises(UndecodableRecord, match="market_event"):
        CODEC.decode_market_event(b"\x0e\x01" + b"\xff" * 8)
    with pytest.raises(UnknownSchemaVersion, match="market_event: unknown writer schema version"):
        CODEC.decode_market_event(bytes((MAGIC, 9)) + CODEC.encode_market_event(tick)[2:])


# --- the JSON view ----------------------------------------------------------------------------


def test_the_json_view_writes_base_units_and_prices_as_strings_and_names_the_curve() -> None:
    pool = Market.default().pool("raydium", SOL.mint, USDT.mint)
    assert pool is not None
    change = LiquidityChanged(
        event_id="e", occurred_at=T0, venue="raydium", token_x=pool.token_x,
        token_y=pool.token_y,
        state=ConstantProductState(reserve_x=2**62, reserve_y=5, fee_numerator=25,
                                   fee_denominator=10_000),
        liquidity_usd=Decimal("12.50"), previous_liquidity_usd=None,
    )
    view = CODEC.market_event_to_json(change)
    assert view["state"] == {"type": "ConstantProductState", "reserveX": str(2**62),
                             "reserveY": "5", "feeNumerator": 25, "feeDenominator": 10_000}
    assert (view["liquidityUsd"], view["previousLiquidityUsd"]) == ("12.50", None)
    assert view["tokenX"] == {"symbol": "SOL", "mint": pool.token_x.mint, "decimals": 9}


@pytest.mark.parametrize("event_type", TYPES, ids=lambda t: t.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_json_view_reads_back_to_the_same_event(event_type: type[Any],
                                                    data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])
    fields = json_reader(event_type, skip=frozenset({"event_id", "occurred_at"}))(
        CODEC.market_event_to_json(event))
    assert event_type(event_id=event.event_id, occurred_at=event.occurred_at, **fields) == event


# --- every committed version stays readable ---------------------------------------------------


def test_the_current_market_schema_is_the_newest_committed_version() -> None:
    versions = history_versions()
    assert versions == list(range(1, len(versions) + 1))
    assert raw_schema(NAME) == raw_schema(NAME, versions[-1])
    assert load_history(NAME).current_version == versions[-1] == CODEC.market_version


def test_every_market_field_added_since_an_older_version_has_a_default() -> None:
    for version in history_versions():
        assert backward_incompatibilities(raw_schema(NAME, version), raw_schema(NAME)) == []


VERSIONED = [(version, cls) for version in history_versions() for cls in TYPES]


@pytest.mark.parametrize(("version", "event_type"), VERSIONED,
                         ids=[f"v{v}-{c.__name__}" for v, c in VERSIONED])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_market_records_of_every_committed_version_decode_with_the_current_schema(
    version: int, event_type: type[Any], data: st.DataObject
) -> None:
    old = raw_schema(NAME, version)
    old_schema, old_named = parsed(old)
    event = data.draw(EVENTS[event_type])
    try:
        old_record = project(read(raw_schema(NAME), CODEC.encode_market_event(event)),
                             old_schema, old_named)
    except NotInVersion:
        assume(False)  # the type did not exist in that version
    decoded = CODEC.decode_market_event(write(old, version, old_record))
    encoded = CODEC.encode_market_event(decoded)
    assert project(read(raw_schema(NAME), encoded), old_schema, old_named) == old_record


def test_a_tick_written_before_ticks_had_a_venue_reads_as_every_venue() -> None:
    current = raw_schema(NAME)
    older = copy.deepcopy(current)
    tick = branch(older, "PriceTick")
    tick["fields"] = [f for f in tick["fields"] if f["name"] != "venue"]
    assert backward_incompatibilities(older, current) == []
    codec = Codec(market=SchemaHistory(NAME, {1: older, 2: current}))
    record = {"eventId": "e", "occurredAt": T0, "schemaVersion": 1,
              "payload": ("oee.market.PriceTick",
                          {"baseMint": "a", "quoteMint": "b", "price": "185.5"})}
    decoded = codec.decode_market_event(write(older, 1, record))
    assert decoded == PriceTick(event_id="e", occurred_at=T0, venue=None, base_mint="a",
                                quote_mint="b", price=Decimal("185.5"))
    assert codec.encode_market_event(decoded)[1] == 2
