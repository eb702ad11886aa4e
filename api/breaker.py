"""A circuit breaker for the command bus: once Kafka is known down, a POST fails at once.

Consumes a monotonic clock and the outcome of every send it admitted; produces, per send,
admission or refusal. A refused send is never handed to the producer, so its command cannot
be executed: the edge can answer 503 within milliseconds instead of making the client wait
for a delivery timeout.

- **closed** (Kafka answers): every send is admitted. Kafka counts as down, and the breaker
  opens, when a send fails (no acknowledgement in time, the producer refused it), or when
  Kafka has been silent for `stall_s` while a send waits: no acknowledgement at all since the
  oldest waiting send was admitted (or since the last acknowledgement, if later). A broker
  that died shows first as acknowledgements that stop coming, well before any timeout; a
  busy one (a backlog, a starved event loop) still acknowledges now and then, so one slow
  acknowledgement alone does not open it.
- **open**: every send is refused for `cooldown_s`.
- **half-open**: after the cooldown the next send is admitted as the probe; the others are
  refused while it is on its way. Its acknowledgement closes the breaker, its failure opens it
  again. Any acknowledgement, even of a send admitted before the breaker opened, closes it:
  the broker answered.

A failure counts only if its send was admitted in the breaker's current period (each opening
and closing starts one), so the timeouts of sends that were stuck when Kafka went away do not
re-open a breaker that a later acknowledgement closed. Single-threaded (one event loop): no
locks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from itertools import count


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Admission:
    """One admitted send; report its outcome with `acked`, `failed` or `abandoned`."""

    number: int
    period: int
    probe: bool


class Breaker:
    def __init__(self, clock: Callable[[], float], *, stall_s: float, cooldown_s: float) -> None:
        if stall_s <= 0 or cooldown_s <= 0:
            raise ValueError("stall_s and cooldown_s must be positive")
        self._clock = clock
        self._stall_s = stall_s
        self._cooldown_s = cooldown_s
        self._numbers = count()
        self._period = 0
        self.state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._last_ack_at = clock()
        self.why = ""  # why it opened last (for the 503's message and the log)
        # The sends of the current period still waiting, in the order they were admitted
        # (so the first one is the oldest): number -> admitted at.
        self._waiting: dict[int, float] = {}

    def admit(self) -> Admission | None:
        """Admit one send now, or refuse it (None): Kafka is down."""
        now = self._clock()
        if self.state is BreakerState.CLOSED:
            oldest = next(iter(self._waiting.values()), None)
            silent_since = max(self._last_ack_at, oldest if oldest is not None else now)
            if now - silent_since > self._stall_s:
                self._open(now, f"no acknowledgement from Kafka for {now - silent_since:.1f} s")
                return None
            return self._admitted(now, probe=False)
        if self.state is BreakerState.OPEN and now - self._opened_at >= self._cooldown_s:
            self.state = BreakerState.HALF_OPEN
            return self._admitted(now, probe=True)
        return None

    def acked(self, admission: Admission) -> None:
        """Kafka acknowledged the send: it is up."""
        self._waiting.pop(admission.number, None)
        self._last_ack_at = self._clock()
        if self.state is not BreakerState.CLOSED:
            self.state = BreakerState.CLOSED
            self._new_period()

    def failed(self, admission: Admission, why: str) -> None:
        """The send got no acknowledgement in time, or the producer refused it."""
        self._waiting.pop(admission.number, None)
        if admission.period == self._period:
            self._open(self._clock(), why)

    def abandoned(self, admission: Admission) -> None:
        """The sender stopped waiting for a reason of its own (a cancelled request)."""
        self._waiting.pop(admission.number, None)
        if admission.probe and self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN  # let the next send probe at once

    def retry_after_s(self) -> int:
        """Whole seconds until a send may be admitted again (at least 1)."""
        left = self._cooldown_s - (self._clock() - self._opened_at)
        return max(1, math.ceil(left))

    def _admitted(self, now: float, *, probe: bool) -> Admission:
        admission = Admission(next(self._numbers), self._period, probe)
        self._waiting[admission.number] = now
        return admission

    def _open(self, now: float, why: str) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = now
        self.why = why
        self._new_period()

    def _new_period(self) -> None:
        self._period += 1
        self._waiting.clear()
