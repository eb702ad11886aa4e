"""The one verdict every fault scenario is held to, computed from what an auditor can read.

Consumes the event log as read from `orders.events` (`EventLog`), the ids of the orders the
API accepted, the rows of the simulated chain (`sim_chain_transactions`), the read model's
`orders` rows and the dead-letter count. Produces a `Verdict`: the counts of the scenario
table (accepted, lost, duplicated, gaps, double submissions, read-model mismatches, dead
letters, recovery time) and, for every kind of violation, what it is and the history of the
first order that shows it. Pure: no I/O here, so what it demands can be read in one place.

What it demands (issue 10, "nothing lost, nothing twice"):
- every accepted order, and every order the log knows, reaches exactly one terminal event;
- per order, `seq` runs 1..n in log order with no repeat, and nothing follows the terminal event;
- no swap is submitted twice: one chain row per (order, attempt), no duplicate submission of a
  signature, at most one landed transaction per order, and the chain agrees with the log on
  which orders landed;
- the read model equals the fold of the log: each order's row has the last event's seq and,
  once terminal, its status; no row for an order the log does not know;
- nothing is dead-lettered beyond the garbage the scenario injected, and the only undecodable
  records in the event store are the ones it injected there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.chaos.event_log import TERMINAL_STATUS, EventLog


class ChaosViolation(AssertionError):
    """The engine broke an invariant under a fault (not a failure of the test's machinery)."""


@dataclass(frozen=True, slots=True)
class ChainRow:
    signature: str
    order_id: str
    attempt: int
    status: str
    duplicate_submissions: int


@dataclass(frozen=True, slots=True)
class ReadModelRow:
    order_id: str
    status: str
    seq: int


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything the checker looks at, gathered after the scenario has drained."""

    log: EventLog
    accepted: frozenset[str]
    chain: tuple[ChainRow, ...]
    read_model: tuple[ReadModelRow, ...]
    dead_letters: int


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a scenario's own injection legitimately leaves behind."""

    dead_letters: int = 0  # garbage records it produced where a worker consumes them
    garbage_in_log: int = 0  # garbage records it produced into orders.events itself


@dataclass
class Verdict:
    scenario: str
    injected: str
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    gaps: int = 0
    double_submissions: int = 0
    read_model_mismatches: int = 0
    dead_letters: int = 0
    recovery_s: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def row(self) -> str:
        recovery = "n/a" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        verdict = "ok" if self.clean else "FAILED"
        return (f"| {self.scenario} | {self.injected} | {self.accepted} | {self.lost} | "
                f"{self.duplicated} | {self.gaps} | {self.double_submissions} | "
                f"{self.read_model_mismatches} | {self.dead_letters} | {recovery} | {verdict} |")

    def explain(self) -> str:
        return f"{self.scenario}: " + "\n  ".join(["invariants broken:", *self.problems])

    def assert_clean(self) -> None:
        if self.problems:
            raise ChaosViolation(self.explain())


TABLE_HEADER = (
    "| scenario | injected | accepted | lost | duplicated | gaps | double submissions | "
    "read model ≠ log | dead letters | recovery | verdict |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def judge(scenario: str, injected: str, observed: Observed, expectations: Expectations,
          recovery_s: float | None) -> Verdict:
    verdict = Verdict(scenario, injected, accepted=len(observed.accepted),
                      dead_letters=observed.dead_letters, recovery_s=recovery_s)
    log = observed.log
    orders = set(observed.accepted) | set(log.by_order)
    _histories(verdict, log, orders)
    _chain(verdict, log, observed.chain)
    _read_model(verdict, log, observed.read_model)
    if observed.dead_letters > expectations.dead_letters:
        verdict.problems.append(
            f"{observed.dead_letters} records dead-lettered, {expectations.dead_letters} "
            "expected (only the garbage this scenario injected may end there)")
    if len(log.garbage) != expectations.garbage_in_log:
        first = log.garbage[0] if log.garbage else None
        verdict.problems.append(
            f"{len(log.garbage)} undecodable records in orders.events, "
            f"{expectations.garbage_in_log} injected; first: {first}")
    return verdict


def _histories(verdict: Verdict, log: EventLog, orders: Iterable[str]) -> None:
    lost: list[str] = []
    duplicated: list[str] = []
    gaps: list[str] = []
    split: list[str] = []
    for order_id in sorted(orders):
        events = log.by_order.get(order_id, [])
        seqs = [e.seq for e in events]
        terminal_at = [i for i, e in enumerate(events) if e.terminal]
        if not terminal_at:
            lost.append(order_id)
        if len(terminal_at) > 1 or (terminal_at and terminal_at[0] != len(events) - 1) \
                or len(set(seqs)) != len(seqs):
            duplicated.append(order_id)
        # A missing seq, or seqs out of log order (the writer must append them in order).
        if events and (sorted(set(seqs)) != list(range(1, max(seqs) + 1)) or seqs != sorted(seqs)):
            gaps.append(order_id)
        if len({e.partition for e in events}) > 1:
            split.append(order_id)
    verdict.lost, verdict.duplicated, verdict.gaps = len(lost), len(duplicated), len(gaps)
    _report(verdict, log, lost, "orders never reached a terminal event (lost or stuck)")
    _report(verdict, log, duplicated,
            "orders have a repeated seq, more than one terminal event or events after it")
    _report(verdict, log, gaps, "orders have a seq gap or seq out of log order")
    _report(verdict, log, split, "orders have events on more than one partition")


def _chain(verdict: Verdict, log: EventLog, chain: Iterable[ChainRow]) -> None:
    per_attempt: dict[tuple[str, int], list[ChainRow]] = defaultdict(list)
    landed: dict[str, list[ChainRow]] = defaultdict(list)
    resubmitted: list[ChainRow] = []
    for row in chain:
        per_attempt[(row.order_id, row.attempt)].append(row)
        if row.status == "confirmed":
            landed[row.order_id].append(row)
        if row.duplicate_submissions:
            resubmitted.append(row)
    twice_per_attempt = {k: rows for k, rows in per_attempt.items() if len(rows) > 1}
    landed_twice = {o: rows for o, rows in landed.items() if len(rows) > 1}
    verdict.double_submissions = (sum(r.duplicate_submissions for r in resubmitted)
                                  + sum(len(rows) - 1 for rows in twice_per_attempt.values())
                                  + sum(len(rows) - 1 for rows in landed_twice.values()))
    if resubmitted:
        row = resubmitted[0]
        verdict.problems.append(
            f"{len(resubmitted)} signatures were submitted more than once (chain counted "
            f"{sum(r.duplicate_submissions for r in resubmitted)} duplicate submissions); first: "
            f"order {row.order_id} attempt {row.attempt}: {log.history(row.order_id)}")
    if twice_per_attempt:
        (order_id, attempt), rows = next(iter(twice_per_attempt.items()))
        verdict.problems.append(
            f"{len(twice_per_attempt)} (order, attempt) pairs have more than one transaction; "
            f"first: order {order_id} attempt {attempt}: {[r.signature for r in rows]}: "
            f"{log.history(order_id)}")
    if landed_twice:
        order_id = next(iter(landed_twice))
        verdict.problems.append(
            f"{len(landed_twice)} orders landed more than one swap; first: {order_id}: "
            f"{log.history(order_id)}")
    _chain_agrees_with_log(verdict, log, set(landed))


def _chain_agrees_with_log(verdict: Verdict, log: EventLog, landed: set[str]) -> None:
    confirmed = {o for o in log.by_order if (t := log.terminal(o)) and t.type == "OrderConfirmed"}
    ended_otherwise = {o for o in landed - confirmed if log.terminal(o) is not None}
    if ended_otherwise:
        first = sorted(ended_otherwise)[0]
        verdict.problems.append(
            f"{len(ended_otherwise)} orders have a swap that landed on chain but ended without "
            f"OrderConfirmed; first: {first}: {log.history(first)}")
    phantom = confirmed - landed
    if phantom:
        first = sorted(phantom)[0]
        verdict.problems.append(
            f"{len(phantom)} orders are OrderConfirmed with no landed swap on chain; first: "
            f"{first}: {log.history(first)}")


def _read_model(verdict: Verdict, log: EventLog, rows: Iterable[ReadModelRow]) -> None:
    mismatches = read_model_mismatches(log, rows)
    verdict.read_model_mismatches = len(mismatches)
    if mismatches:
        verdict.problems.append(
            f"{len(mismatches)} read-model rows differ from the fold of the log; first: "
            f"{mismatches[0]}")


def read_model_mismatches(log: EventLog, rows: Iterable[ReadModelRow]) -> list[str]:
    """Each order whose `orders` row is not what folding its events gives (status and seq)."""
    by_id = {row.order_id: row for row in rows}
    found: list[str] = []
    for order_id, events in sorted(log.by_order.items()):
        last = max(events, key=lambda e: e.seq)
        row = by_id.pop(order_id, None)
        expected_status = TERMINAL_STATUS.get(last.type)
        if row is None:
            found.append(f"{order_id}: no row; log: {log.history(order_id)}")
        elif row.seq != last.seq or (expected_status and row.status != expected_status):
            found.append(f"{order_id}: row has seq {row.seq} {row.status}, log ends with "
                         f"{last.describe()}; log: {log.history(order_id)}")
    found.extend(f"{order_id}: a row for an order the log does not know" for order_id in by_id)
    return found


def _report(verdict: Verdict, log: EventLog, order_ids: list[str], what: str) -> None:
    if order_ids:
        first = order_ids[0]
        verdict.problems.append(f"{len(order_ids)} {what}; first: {first}: {log.history(first)}")
