"""The scripted feed: market events read from a JSON-lines file and played on a timetable.

Consumes text, one event per line: the event's JSON view (as `Codec.market_event_to_json`
and the topic streams show it) plus its type, when to publish it and, optionally, where:

    {"atMs": 0, "topic": "prices", "type": "PriceTick", "venue": "raydium",
     "baseMint": "SOL", "quoteMint": "USDC", "price": "150"}

`atMs` counts from the start of the play. `topic` (prices | pools) may be left out; if given
it must be the type's topic. `eventId` and `occurredAt` may be left out (then: a generated id,
and the moment the event is played). A token may be written as its symbol wherever a mint
(`baseMint`) or a token (`tokenX`) is expected; a token the registry does not know (a new
listing) is written in full: {"symbol": "WIF", "mint": "...", "decimals": 6}. Blank lines
and lines starting with `#` are skipped. Produces `ScriptedEvent`s; `play` publishes them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from domain.market_events import MARKET_EVENT_TYPES, POOL_EVENTS, BaseMarketEvent, MarketEvent
from domain.tokens import TokenRegistry, UnknownToken
from producers.publisher import MarketPublisher
from schemas.json_reader import FieldsReader, UnreadableJson, json_reader

_BASE: Final = frozenset(BaseMarketEvent.__dataclass_fields__)
_READERS: Final[Mapping[str, tuple[type[Any], FieldsReader]]] = {
    cls.__name__: (cls, json_reader(cls, skip=_BASE)) for cls in MARKET_EVENT_TYPES
}
_TIMETABLE: Final = frozenset({"atMs", "topic", "type", "eventId", "occurredAt"})
_MINT_FIELDS: Final = ("baseMint", "quoteMint")
_TOKEN_FIELDS: Final = ("tokenX", "tokenY")


class ScriptError(ValueError):
    """A script line that is not a market event (the message names the line)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stamp:
    """A line's optional id and time (the envelope fields of the event)."""

    event_id: str | None
    occurred_at: datetime | None


_STAMP_READER: Final = json_reader(_Stamp)


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    at_ms: int
    event: MarketEvent
    stamp_when_played: bool  # no occurredAt in the script: the play time is the event's time


def parse_script(text: str, registry: TokenRegistry, now: datetime,
                 new_id: Callable[[], str]) -> tuple[ScriptedEvent, ...]:
    """Every event of `text`, in timetable order (lines with the same atMs keep their order).

    `now` stands in for a missing occurredAt until the event is played.
    """
    parsed = [
        _line(raw, number, registry, now, new_id)
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    return tuple(sorted(parsed, key=lambda scripted: scripted.at_ms))  # sorted() is stable


async def play(script: Sequence[ScriptedEvent], publisher: MarketPublisher,
               clock: Callable[[], datetime]) -> int:
    """Publish each event at its `atMs` after the start; events due together go together.

    Returns the number of events published. Waiting here is the script's timetable, not a
    synchronisation: each batch is sent once it is due and awaited until Kafka acks it.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at_ms, due in itertools.groupby(script, key=lambda scripted: scripted.at_ms):
        delay = start + at_ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = clock()
        await publisher.send(
            replace(item.event, occurred_at=now) if item.stamp_when_played else item.event
            for item in due
        )
    return len(script)


def _line(raw: str, number: int, registry: TokenRegistry, now: datetime,
          new_id: Callable[[], str]) -> ScriptedEvent:
    where = f"line {number}"
    try:
        data = json.loads(raw, parse_float=Decimal)  # "price": 1.5 stays exactly 1.5
    except json.JSONDecodeError as error:
        raise ScriptError(f"{where}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{where}: expected a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _READERS:
        raise ScriptError(f"{where}: \"type\" must be one of {sorted(_READERS)}, got {kind!r}")
    cls, read = _READERS[kind]
    at_ms = data.get("atMs")
    if type(at_ms) is not int or at_ms < 0:
        raise ScriptError(f"{where}: \"atMs\" must be a non-negative integer, got {at_ms!r}")
    topic = "pools" if issubclass(cls, POOL_EVENTS) else "prices"
    if data.get("topic", topic) != topic:
        raise ScriptError(f"{where}: {kind} goes to \"{topic}\", not {data['topic']!r}")
    try:
        fields = read(_with_tokens(data, registry), f"{where}: {kind}")
        stamp = _Stamp(**_STAMP_READER(
            {key: data[key] for key in ("eventId", "occurredAt") if key in data}, where))
        event = cls(event_id=stamp.event_id or new_id(), occurred_at=stamp.occurred_at or now,
                    **fields)
    except (UnreadableJson, UnknownToken) as error:
        raise ScriptError(f"{where}: {error}") from None
    return ScriptedEvent(at_ms, event, stamp_when_played="occurredAt" not in data)


def _with_tokens(data: Mapping[str, Any], registry: TokenRegistry) -> dict[str, Any]:
    """The event's own fields, with symbols written out as mints or tokens."""
    fields = {key: value for key, value in data.items() if key not in _TIMETABLE}
    for key in _MINT_FIELDS:
        value = fields.get(key)
        if isinstance(value, str) and value in registry:
            fields[key] = registry.resolve(value).mint
    for key in _TOKEN_FIELDS:
        value = fields.get(key)
        if isinstance(value, str):  # a symbol or mint the registry must know
            token = registry.resolve(value)
            fields[key] = {"symbol": token.symbol, "mint": token.mint, "decimals": token.decimals}
    return fields
