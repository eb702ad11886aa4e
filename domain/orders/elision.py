"""Which events of an order's history a later one makes redundant to its state (pure).

A waiting limit order records a `PriceObserved` for every new best price, so its history grows
for as long as it waits. Each one sets only what the next one sets again (the best price and
when, `seq`, `updated_at`; the status stays `waiting`), so of a run of them only the last one
matters to the state: `superseded(earlier, later)`. `evolve_over_elided` folds an event whose
superseded predecessors were left out, to exactly the state the whole run folds to. The writer
keeps, and snapshots, the histories of orders in flight without them (`streams.partition_fold`,
`streams.snapshots`); the event store keeps every event.
"""

from __future__ import annotations

from dataclasses import replace

from domain.orders.events import Event, PriceObserved
from domain.orders.evolve import evolve
from domain.orders.state import OrderState
from domain.orders.status import OrderStatus


def superseded(earlier: Event, later: Event) -> bool:
    """Does `later`, the event right after `earlier` in its order's history, set everything
    `earlier` set (so a history without `earlier` folds to the same state)?"""
    return isinstance(earlier, PriceObserved) and isinstance(later, PriceObserved)


def evolve_over_elided(state: OrderState, event: Event) -> OrderState:
    """`evolve(state, event)`, where the events between `state.seq` and `event.seq`, if any,
    were left out as superseded by `event` (a `PriceObserved` of a waiting order); any other
    gap is a `SequenceGap` as in `evolve`."""
    if (event.seq > state.seq + 1 and isinstance(event, PriceObserved)
            and state.status is OrderStatus.WAITING):
        state = replace(state, seq=event.seq - 1)
    return evolve(state, event)
