"""The venue registry: every venue the engine routes through, declared once.

Consumes the venue modules (one per venue: its pool math, fee bounds, wire state and seed
pools); produces `VENUES`, which everything else iterates: the default market, the market
events' mapping, the routing stage's quote fan-out, the API's `venue` filter. `PoolState` is
the closed union of the venues' wire states, the branches of `state` in
schemas/market_event.avsc; the registry refuses to exist if the two disagree.

Adding a venue: write its module beside these (implementing `domain.pools.Venue` and
`domain.pools.Pool`) and add it to `VENUES`. If its curve has no wire state yet, add the new
state to `PoolState` and its record to schemas/market_event.avsc (a new version, copied to
schemas/history); a venue of an existing curve reuses that curve's state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeAlias, get_args

from domain.pools import Pool, Venue
from domain.quotes import SPLIT
from domain.venues.meteora import METEORA, BinState
from domain.venues.raydium import RAYDIUM, ConstantProductState

PoolState: TypeAlias = ConstantProductState | BinState


class UnknownVenue(ValueError):
    """A name no registered venue answers to."""


@dataclass(frozen=True, slots=True)
class VenueRegistry:
    """The venues, in a fixed order, looked up by name; checked whole when built."""

    venues: tuple[Venue, ...]
    _by_name: Mapping[str, Venue] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [venue.name for venue in self.venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venue names must be unique: {names}")
        if SPLIT in names:
            raise ValueError(f"{SPLIT!r} is a routing outcome, not a venue name")
        for venue in self.venues:
            _check_implements(venue)
        # Venues of one curve may share a state (the event's venue says whose pool it is).
        states = sorted({venue.state_type.__name__ for venue in self.venues})
        union = sorted(state.__name__ for state in get_args(PoolState))
        if states != union:
            raise ValueError(f"PoolState must list exactly the venues' states: {union} vs "
                             f"{states}")
        object.__setattr__(self, "_by_name", MappingProxyType(dict(zip(names, self.venues))))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(venue.name for venue in self.venues)

    def __getitem__(self, name: str) -> Venue:
        venue = self._by_name.get(name)
        if venue is None:
            raise UnknownVenue(f"unknown venue {name!r}; known: {', '.join(self.names)}")
        return venue

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Venue]:
        return iter(self.venues)

    def __len__(self) -> int:
        return len(self.venues)


def _check_implements(venue: Venue) -> None:
    """Fail when a venue or its pool type lacks a protocol member (say, its fee bounds): a
    pool without them would otherwise surface as an AttributeError deep inside routing."""
    for protocol, subject in ((Venue, venue), (Pool, venue.pool_type)):
        missing = sorted(member for member in _members(protocol) if not hasattr(subject, member))
        if missing:
            raise TypeError(f"{subject!r} does not implement {protocol.__name__}: no {missing}")


def _members(protocol: type) -> frozenset[str]:
    return frozenset(name for name in vars(protocol) if not name.startswith("_"))


VENUES: Final = VenueRegistry((RAYDIUM, METEORA))
