"""The recent-events cache's raw entries: events nobody wanted as they arrived are made
messages only when asked for, once, in their place; an order's OrderAccepted is kept aside
for its tokens and owner even after later events pushed it out of the last `per_order`."""

from __future__ import annotations

from dataclasses import dataclass

from api.live.messages import OrderMessage
from api.live.recent import RecentEvents
from domain.orders.status import OrderStatus


@dataclass(frozen=True)
class Raw:
    seq: int
    accepted: bool = False


class Decoder:
    def __init__(self) -> None:
        self.decoded: list[int] = []

    def __call__(self, raw: Raw) -> OrderMessage | None:
        self.decoded.append(raw.seq)
        if raw.seq < 0:
            return None  # undecodable
        return OrderMessage("o-1", raw.seq, "OrderAccepted" if raw.accepted else "E",
                            OrderStatus.PENDING, f"m{raw.seq}",
                            tokens=frozenset({"SOL"}) if raw.accepted else frozenset(),
                            owner="key-1" if raw.accepted else None)


def test_raw_entries_are_decoded_when_asked_for_once_and_in_order() -> None:
    decoder = Decoder()
    recent = RecentEvents(max_orders=4, per_order=8, materialise=decoder)
    for seq in (1, 2, 3):
        recent.remember_raw("o-1", Raw(seq, accepted=seq == 1), accepted=seq == 1)
    assert decoder.decoded == []

    assert [m.seq for m in recent.messages_of("o-1")] == [1, 2, 3]
    assert [m.seq for m in recent.messages_of("o-1")] == [1, 2, 3]
    assert sorted(decoder.decoded) == [1, 2, 3]  # each once, the OrderAccepted included
    assert recent.tokens_of("o-1") == frozenset({"SOL"})


def test_the_tokens_and_owner_outlive_the_accepted_event_in_the_last_few() -> None:
    decoder = Decoder()
    recent = RecentEvents(max_orders=4, per_order=2, materialise=decoder)
    recent.remember_raw("o-1", Raw(1, accepted=True), accepted=True)
    for seq in (2, 3, 4):
        recent.remember_raw("o-1", Raw(seq))

    assert recent.owner_of("o-1") == "key-1"
    assert recent.tokens_of("o-1") == frozenset({"SOL"})
    assert [m.seq for m in recent.messages_of("o-1")] == [3, 4]
    assert sorted(decoder.decoded) == [1, 3, 4]  # seq 2 was dropped undecoded


def test_an_undecodable_raw_entry_is_left_out() -> None:
    recent = RecentEvents(max_orders=4, per_order=4, materialise=Decoder())
    recent.remember_raw("o-1", Raw(-1))
    recent.remember_raw("o-1", Raw(2))
    assert [m.seq for m in recent.messages_of("o-1")] == [2]
