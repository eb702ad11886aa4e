"""The .avsc files are the contract: the code matches them, and every committed version of
them stays readable by the current one."""

from __future__ import annotations

import copy
from collections.abc import Callable
import json
import shutil
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.orders import COMMAND_TYPES, EVENT_TYPES, OrderAccepted, OrderStatus, OrderType
from domain.work import Work
from schemas.codec import Codec
from schemas.errors import SchemaHistoryError, SchemaMismatch
from schemas.versions import SchemaHistory, load_history
from schemas.upcasts import UPCASTS, upcast_event_v2_v3, upcast_v2_v3
from tests.contract.avro_records import (
    SCHEMAS,
    flat_terms,
    NotInVersion,
    backward_incompatibilities,
    parsed,
    project,
    raw_schema,
    read,
    records,
    write,
)
from tests.contract.strategies import messages

EVENTS, COMMANDS, WORK = "order_event", "order_command", "order_work"
WORK_TYPES: tuple[type[Any], ...] = get_args(Work)
CONTRACTS = [(EVENTS, EVENT_TYPES), (COMMANDS, COMMAND_TYPES), (WORK, WORK_TYPES)]
NAMES = [name for name, _ in CONTRACTS]
CODEC = Codec.load()
CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    # Any status will do: the test compares envelopes it writes itself.
    EVENTS: (lambda event: CODEC.encode_event(event, status=OrderStatus.ROUTING),
             CODEC.decode_event),
    COMMANDS: (CODEC.encode_command, CODEC.decode_command),
    WORK: (CODEC.encode_work, CODEC.decode_work),
}


def payload_branches(schema: dict[str, Any]) -> set[str]:
    (payload,) = [field for field in schema["fields"] if field["name"] == "payload"]
    return {branch["name"] for branch in payload["type"]}


def history_versions(name: str) -> list[int]:
    paths = SCHEMAS.glob(f"history/{name}.v*.avsc")
    return sorted(int(path.name.removesuffix(".avsc").rpartition(".v")[2]) for path in paths)


# --- the code matches the contract ----------------------------------------------------------


@pytest.mark.parametrize(("name", "types"), CONTRACTS)
def test_the_payload_union_holds_exactly_the_python_message_types(
    name: str, types: tuple[type[Any], ...]
) -> None:
    assert payload_branches(raw_schema(name)) == {cls.__name__ for cls in types}


def test_every_schema_uses_the_namespace_oee_orders() -> None:
    for name in NAMES:
        assert raw_schema(name)["namespace"] == "oee.orders"


def test_the_shared_value_records_are_identical_in_both_schemas() -> None:
    events, commands = records(raw_schema(EVENTS)), records(raw_schema(COMMANDS))
    for shared in ("RoutingDecision", "VenueQuote", "RouteLeg", "MarketTerms", "LimitTerms",
                   "SniperTerms"):
        assert events[f"oee.orders.{shared}"] == commands[f"oee.orders.{shared}"]
    leg = "oee.orders.RouteLeg"
    assert records(raw_schema(WORK))[leg] == events[leg]


def test_a_schema_missing_a_message_type_is_refused() -> None:
    schema = raw_schema(EVENTS)
    payload = _payload(schema)
    payload["type"] = [b for b in payload["type"] if b["name"] != "OrderRedriven"]
    with pytest.raises(SchemaMismatch, match="OrderRedriven"):
        Codec(SchemaHistory(EVENTS, {1: schema}), load_history(COMMANDS))


def test_a_schema_missing_a_field_is_refused() -> None:
    schema = raw_schema(EVENTS)
    limit = _terms_record(schema, "LimitTerms")
    limit["fields"] = [f for f in limit["fields"] if f["name"] != "slippageBps"]
    with pytest.raises(SchemaMismatch, match="slippageBps"):
        Codec(SchemaHistory(EVENTS, {1: schema}), load_history(COMMANDS))


def test_a_field_of_the_wrong_type_is_refused() -> None:
    schema = raw_schema(COMMANDS)
    market = _terms_record(schema, "MarketTerms")
    for field in market["fields"]:
        if field["name"] == "amountIn":
            field["type"] = "string"
    with pytest.raises(SchemaMismatch, match="amount_in"):
        Codec(load_history(EVENTS), SchemaHistory(COMMANDS, {1: schema}))


# --- every committed version stays readable ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_current_schema_is_the_newest_committed_version(name: str) -> None:
    versions = history_versions(name)
    assert versions == list(range(1, len(versions) + 1))
    assert raw_schema(name) == raw_schema(name, versions[-1])


def resolved_to(name: str, version: int) -> int:
    """How far Avro resolution takes a record of `version` (as the codec reads it): to the
    first version with an upcaster, else to the current one."""
    upcasts = UPCASTS.get(name, {})
    return min((v for v in upcasts if v >= version), default=history_versions(name)[-1])


@pytest.mark.parametrize("name", NAMES)
def test_every_field_added_since_an_older_version_has_a_default(name: str) -> None:
    for version in history_versions(name):
        target = raw_schema(name, resolved_to(name, version))
        assert backward_incompatibilities(raw_schema(name, version), target) == [], version


# What Avro resolution cannot do from v2 to v3, and the upcaster upcast_v2_v3 does instead.
UPCAST_V2_V3 = {
    EVENTS: ["oee.orders.OrderAccepted.terms was added without a default"],
    COMMANDS: ["oee.orders.ExecuteOrder.terms was added without a default"],
}


@pytest.mark.parametrize("name", [EVENTS, COMMANDS])
def test_the_upcaster_covers_exactly_what_resolution_cannot_do(name: str) -> None:
    # The event's upcaster also fills the envelope's status, which Avro would leave null.
    assert UPCASTS[name][2] is (upcast_event_v2_v3 if name == EVENTS else upcast_v2_v3)
    assert backward_incompatibilities(raw_schema(name, 2), raw_schema(name, 3)) == (
        UPCAST_V2_V3[name])


VERSIONED = [
    (name, version, cls)
    for name, types in CONTRACTS
    for version in history_versions(name)
    for cls in types
    # a type added later has no old records to read
    if cls.__name__ in payload_branches(raw_schema(name, version))
]


@pytest.mark.parametrize(
    ("name", "version", "cls"), VERSIONED, ids=[f"{n}.v{v}-{c.__name__}" for n, v, c in VERSIONED]
)
# An OrderAccepted of v1 can only carry market terms: four of the five terms types drawn are
# discarded there (since twap and dca), which is expected, not a slow strategy.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_records_written_with_every_committed_version_decode_with_the_current_schema(
    name: str, version: int, cls: type[Any], data: st.DataObject
) -> None:
    current, old = raw_schema(name), raw_schema(name, version)
    encode, decode = CODECS[name]
    old_schema, old_named = parsed(old)
    message = data.draw(messages(cls))
    def as_old(record: dict[str, Any]) -> dict[str, Any]:
        if version < 3 and name in UPCAST_V2_V3:
            record = flat_terms(record, version)
        return as_version(project(record, old_schema, old_named), version)

    try:
        old_record = as_old(read(current, encode(message)))
    except NotInVersion:
        assume(False)  # a nested type did not exist in that version: nothing old to read
    decoded = decode(write(old, version, old_record))
    # Whatever the old version could express survives; newer fields take their defaults.
    assert as_old(read(current, encode(decoded))) == old_record


def as_version(record: dict[str, Any], version: int) -> dict[str, Any]:
    """`record` as its writer of `version` would have stamped its envelope."""
    return record | {"schemaVersion": version} if "schemaVersion" in record else record


# --- the compatibility machinery, on a synthetic evolution ---------------------------------------


def test_a_record_of_an_older_version_is_resolved_to_the_current_schema() -> None:
    current = raw_schema(EVENTS)
    older = copy.deepcopy(current)
    market = _terms_record(older, "MarketTerms")
    market["fields"] = [f for f in market["fields"] if f["name"] != "clientOrderId"]
    assert backward_incompatibilities(older, current) == []
    codec = Codec(SchemaHistory(EVENTS, {1: older, 2: current}), load_history(COMMANDS))

    old_terms = {
        "tokenIn": "in", "tokenOut": "out", "tokenInSymbol": "IN", "tokenOutSymbol": "OUT",
        "tokenInDecimals": 9, "tokenOutDecimals": 6, "amountIn": 10**9, "slippageBps": 50,
    }
    old_payload = {"terms": ("oee.orders.MarketTerms", old_terms)}
    envelope = _event_envelope("OrderAccepted", old_payload, schema_version=1)
    event = codec.decode_event(write(older, 1, envelope))
    assert isinstance(event, OrderAccepted)
    assert (event.order_type, event.terms.client_order_id) == (OrderType.MARKET, None)
    # new records are written with the newest
    assert codec.encode_event(event, status=OrderStatus.PENDING)[1] == 2


def test_a_field_added_without_a_default_is_reported() -> None:
    older = raw_schema(EVENTS)
    newer = copy.deepcopy(older)
    _branch(newer, "RoutingStarted")["fields"].append({"name": "venueHint", "type": "string"})
    _branch(newer, "OrderCancelled")["fields"].append(
        {"name": "by", "type": ["null", "string"], "default": None}
    )
    payload = _payload(newer)
    payload["type"] = [b for b in payload["type"] if b["name"] != "CancelRejected"]
    assert backward_incompatibilities(older, newer) == [
        "oee.orders.CancelRejected was removed: old records of it cannot be read",
        "oee.orders.RoutingStarted.venueHint was added without a default",
    ]


def test_a_current_schema_not_copied_to_history_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    changed = raw_schema(EVENTS)
    changed["doc"] = "edited without a new version"
    (root / f"{EVENTS}.avsc").write_text(json.dumps(changed))
    following = history_versions(EVENTS)[-1] + 1
    with pytest.raises(SchemaHistoryError, match=f"history/{EVENTS}.v{following}.avsc"):
        load_history(EVENTS, root)
    (root / "history" / f"{EVENTS}.v{following}.avsc").write_text(json.dumps(changed))
    assert load_history(EVENTS, root).current_version == following


def _terms_record(schema: dict[str, Any], name: str) -> dict[str, Any]:
    owner = _branch(schema, "OrderAccepted" if schema["name"] == "OrderEvent" else "ExecuteOrder")
    (terms,) = [field for field in owner["fields"] if field["name"] == "terms"]
    (record,) = [r for r in terms["type"] if r["name"] == name]
    return record  # type: ignore[no-any-return]


def _branch(schema: dict[str, Any], name: str) -> dict[str, Any]:
    (branch,) = [b for b in _payload(schema)["type"] if b["name"] == name]
    return branch  # type: ignore[no-any-return]


def _payload(schema: dict[str, Any]) -> dict[str, Any]:
    """The envelope's payload field (not the last one since the v5 hash fields)."""
    (payload,) = [f for f in schema["fields"] if f["name"] == "payload"]
    return payload  # type: ignore[no-any-return]


def _event_envelope(name: str, payload: dict[str, Any], schema_version: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "eventId": "e-1", "orderId": "o-1", "seq": 1, "type": name,
        "occurredAt": datetime(2025, 1, 1, tzinfo=UTC), "correlationId": "c",
        "causationId": "c", "schemaVersion": schema_version,
        "payload": (f"oee.orders.{name}", payload),
    }
