"""Open-loop load through the public HTTP API, by clients that retry like a careful bot.

Consumes the API's base URL. Produces `count` market orders at a fixed rate, each under its
own `clientOrderId`, fired on schedule whether or not earlier ones have been answered (open
loop: a stalled engine does not slow the arrivals down). A client whose POST fails without a
verdict (connection refused or reset, timeout, 5xx) retries the very same body, so the same
key and order, with a capped backoff until its deadline: that is what makes a retry safe.
An order counts as accepted once any attempt got 200/201; the accepted ones are what the
checker holds the engine to.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.2, 2.0


@dataclass
class Submission:
    key: str
    body: dict[str, object]
    order_id: str | None = None
    accepted_at: float | None = None  # wall clock (seconds) of the first 2xx
    outcomes: list[str] = field(default_factory=list)  # one per attempt: status or exception

    @property
    def accepted(self) -> bool:
        return self.order_id is not None


def market_order(key: str, index: int) -> dict[str, object]:
    """A small SOL→USDC market order; amounts differ so that no two orders are alike."""
    return {"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC",
            "amountIn": f"0.{index + 1:04d}", "slippageBps": 100, "clientOrderId": key}


class OpenLoopLoad:
    """`count` orders at `rate` per second against `base_url` (fewer if stopped); `run()`
    returns when every order fired has its verdict."""

    def __init__(self, base_url: str, tag: str, count: int, rate: float,
                 give_up_after_s: float = 120.0, request_timeout_s: float = 15.0) -> None:
        self.base_url = base_url
        self.count = count
        self.rate = rate
        self.give_up_after_s = give_up_after_s
        self.request_timeout_s = request_timeout_s
        self.submissions = [Submission(key=f"chaos-{tag}-{i:05d}",
                                       body=market_order(f"chaos-{tag}-{i:05d}", i))
                            for i in range(count)]
        self.started_at: float | None = None
        self.fired = 0
        self._stopped = False

    @property
    def accepted(self) -> dict[str, Submission]:
        """Accepted submissions by order id."""
        return {s.order_id: s for s in self.submissions if s.order_id is not None}

    @property
    def settled(self) -> int:
        return sum(s.accepted for s in self.submissions)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
        timeout = httpx.Timeout(self.request_timeout_s)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits,
                                     timeout=timeout) as client:
            self.started_at = time.monotonic()
            tasks = []
            for index, submission in enumerate(self.submissions):
                due = self.started_at + index / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # the arrival schedule
                if self._stopped:
                    break
                self.fired += 1
                tasks.append(asyncio.create_task(self._submit(client, submission)))
            await asyncio.gather(*tasks)

    def stop(self) -> None:
        """Fire no more orders; those fired still run to their verdict (`run` awaits them)."""
        self._stopped = True

    async def _submit(self, client: httpx.AsyncClient, submission: Submission) -> None:
        give_up = time.monotonic() + self.give_up_after_s
        backoff = BACKOFF_MIN_S
        while time.monotonic() < give_up:
            try:
                response = await client.post("/api/orders/execute", json=submission.body)
            except httpx.HTTPError as error:  # refused, reset, timed out: no verdict, retry
                submission.outcomes.append(type(error).__name__)
            else:
                submission.outcomes.append(str(response.status_code))
                if response.status_code in (200, 201):
                    submission.order_id = str(response.json()["orderId"])
                    submission.accepted_at = time.time()
                    return
                if response.status_code not in RETRYABLE_STATUS:
                    return  # a verdict on the request itself: retrying would not change it
            await asyncio.sleep(backoff)  # the client's retry backoff
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def outcome_summary(self) -> dict[str, int]:
        """How many attempts ended how (e.g. {'201': 300, '503': 12, 'ConnectError': 40})."""
        counts: dict[str, int] = {}
        for submission in self.submissions:
            for outcome in submission.outcomes:
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts


@dataclass
class Probe:
    """One keyless POST: when it went, how long its answer took, what it said."""

    sent_at: float  # wall clock (seconds)
    latency_s: float | None = None
    outcome: str = ""  # the status, or the exception's name
    order_id: str | None = None  # from the body: every answer names the order it assigned


@dataclass(frozen=True)
class ProbeReport:
    """What keyless POSTs were told during a fault, against what became of their orders."""

    outcomes: dict[str, int]
    answered_503: int
    executed_503: int  # answered 503 ("not executed") and accepted anyway: must be 0
    answered_504: int
    executed_504: int  # answered 504 ("unknown") and accepted: allowed, the client reconciles
    unexecuted_201: int  # answered 201 and never accepted: must be 0
    first_fast_503_s: float | None  # from the fault to the first 503 answered within 1 s
    median_503_s: float | None  # how long a 503 took to answer

    def line(self) -> str:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f} s"

        return (f"keyless POSTs {self.outcomes}: 503 {self.answered_503} (executed "
                f"{self.executed_503}), 504 {self.answered_504} (executed {self.executed_504}), "
                f"201 never executed {self.unexecuted_201}; first fast 503 "
                f"{seconds(self.first_fast_503_s)} after the fault, a 503 answered in "
                f"{seconds(self.median_503_s)} (median)")


class KeylessProbes:
    """POSTs without an idempotency key at `rate` per second while running, never retried: a
    client that trusts the answer. A 503 must mean its order never executes."""

    def __init__(self, base_url: str, rate: float, request_timeout_s: float = 15.0) -> None:
        self.base_url = base_url
        self.rate = rate
        self.request_timeout_s = request_timeout_s
        self.probes: list[Probe] = []

    async def run(self, stop: asyncio.Event) -> None:
        timeout = httpx.Timeout(self.request_timeout_s)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client:
            tasks = []
            index = 0
            while not stop.is_set():
                tasks.append(asyncio.create_task(self._probe(client, index)))
                index += 1
                try:
                    await asyncio.wait_for(stop.wait(), 1 / self.rate)  # the arrival schedule
                except TimeoutError:
                    pass
            await asyncio.gather(*tasks)

    def answered(self, status: str, after_wall: float) -> bool:
        return any(p.outcome == status and p.sent_at > after_wall for p in self.probes)

    async def _probe(self, client: httpx.AsyncClient, index: int) -> None:
        probe = Probe(sent_at=time.time())
        self.probes.append(probe)
        body = market_order("unused", 9000 + index % 999)
        del body["clientOrderId"]
        started = time.monotonic()
        try:
            response = await client.post("/api/orders/execute", json=body)
        except httpx.HTTPError as error:
            probe.outcome = type(error).__name__
        else:
            probe.outcome = str(response.status_code)
            probe.order_id = response.json().get("orderId")
        probe.latency_s = time.monotonic() - started

    def report(self, accepted: set[str], fault_wall: float) -> ProbeReport:
        """`accepted`: the ids of every order with an OrderAccepted in the event store."""
        def of(status: str) -> list[Probe]:
            return [p for p in self.probes if p.outcome == status]

        def executed(probes: list[Probe]) -> int:
            return sum(p.order_id in accepted for p in probes)

        fast = [p.sent_at + (p.latency_s or 0) - fault_wall for p in of("503")
                if p.latency_s is not None and p.latency_s <= 1.0 and p.sent_at >= fault_wall]
        latencies = [p.latency_s for p in of("503") if p.latency_s is not None]
        outcomes: dict[str, int] = {}
        for probe in self.probes:
            outcomes[probe.outcome] = outcomes.get(probe.outcome, 0) + 1
        return ProbeReport(
            outcomes=outcomes, answered_503=len(of("503")), executed_503=executed(of("503")),
            answered_504=len(of("504")), executed_504=executed(of("504")),
            unexecuted_201=len(of("201")) - executed(of("201")),
            first_fast_503_s=min(fast) if fast else None,
            median_503_s=statistics.median(latencies) if latencies else None)
