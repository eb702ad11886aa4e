"""The execution policy: how often an order is tried and how long it waits in between."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """At most `max_attempts` attempts; attempt n+1 starts `retry_delays_ms[n-1]` after
    attempt n failed transiently."""

    max_attempts: int = 3
    retry_delays_ms: tuple[int, ...] = (1000, 2000)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if len(self.retry_delays_ms) < self.max_attempts - 1:
            raise ValueError(f"{self.max_attempts} attempts need {self.max_attempts - 1} delays")
        if any(delay < 0 for delay in self.retry_delays_ms):
            raise ValueError("retry delays must not be negative")

    def may_retry(self, attempt: int, *, transient: bool) -> bool:
        return transient and attempt < self.max_attempts

    def delay_ms(self, attempt: int) -> int:
        """The backoff after attempt `attempt` failed."""
        return self.retry_delays_ms[attempt - 1]
