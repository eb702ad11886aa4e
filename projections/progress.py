"""How far a projection is: events projected, lag, events/s and ETA; and a text progress bar.

Consumes samples of (time, events projected, events in the topic) — the sum of a schema's
stored next offsets and the sum of the topic's end offsets; produces a `Progress` value
(JSON-ready for `/api/projections/status`) and its one-line rendering for the CLI.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Final

_WINDOW_S: Final = 5.0  # events/s over the last few seconds: reacts, but does not flicker


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # preparing | catching_up | finishing | swapping | done | failed
    schema: str
    projected: int
    end: int
    events_per_s: float
    started_at: float  # unix time
    finished_at: float | None = None
    error: str | None = None

    @property
    def lag(self) -> int:
        return max(self.end - self.projected, 0)

    @property
    def eta_s(self) -> float | None:
        if self.lag == 0:
            return 0.0
        return self.lag / self.events_per_s if self.events_per_s > 0 else None

    @property
    def fraction(self) -> float:
        return 1.0 if self.end == 0 else min(self.projected / self.end, 1.0)

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.update(lag=self.lag, eta_s=self.eta_s, percent=round(self.fraction * 100, 1))
        return body


@dataclass(slots=True)
class RateMeter:
    """events/s over a sliding window of (monotonic time, events projected) samples."""

    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, projected: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.samples.append((now, projected))
        while len(self.samples) > 2 and now - self.samples[1][0] >= _WINDOW_S:
            self.samples.popleft()
        (t0, p0), (t1, p1) = self.samples[0], self.samples[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0


def render_bar(progress: Progress, width: int = 30) -> str:
    """`[#########.....]  62.1%  620,000/1,000,000  51,230 ev/s  lag 379,000  ETA 7s  phase`"""
    filled = int(progress.fraction * width)
    eta = progress.eta_s
    eta_text = "?" if eta is None else f"{eta:,.0f}s"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.fraction * 100:5.1f}%  "
        f"{progress.projected:,}/{progress.end:,}  {progress.events_per_s:,.0f} ev/s  "
        f"lag {progress.lag:,}  ETA {eta_text}  {progress.phase}"
    )
