"""The execution stage: submits a built transaction to the simulated chain and follows it.

Consumes decoded `ExecuteSwap` items (the Faust shell decodes them) and produces its reports to
`orders.commands` through the `Outbox` port; the chain is the `Chain` port. For an ExecuteSwap
item it submits the transaction in one atomic step (a re-drive after a crash finds it already
submitted and follows it instead: never twice), reports the submission, waits for the landing
time without holding the partition, settles the swap against the market of that moment and
reports the outcome. A swap that lands as it is submitted (no confirmation delay, or a re-drive
after its landing time) and is confirmed is reported by its confirmation alone: the writer
decides the submission from it (`decide` takes a confirmation of a swap it has not seen
submitted as proof of both), so every status still becomes an event, with one record and one
writer decision fewer per order. A confirmed swap's impact (its pools as the swap left them) is
published as pool snapshots through the `MarketOutbox`, after the confirmation, so the next
quote of every process sees it; an impact that cannot be published is logged and dropped
(market data is superseded by the next snapshot; the order's outcome never waits on it). A
re-drive of a swap this stage is still executing (same order and attempt) is a no-op: the
running task reports for both. An unknown outcome (the database is down, the worker dies) is
never reported as a failure — the watchdog re-drives and the chain answers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any

from domain.market_events import snapshot_of
from domain.orders.commands import AttemptFailed, Command, SubmissionSucceeded, SwapConfirmed
from domain.pools import Pool
from domain.work import ExecuteSwap
from streams.chain import (ChainTransaction, Settlement, Submission, TransientChainError,
                          slot_at)
from streams.in_flight import InFlight
from streams.ports import Chain, Clock, MarketOutbox, MarketSource, Outbox

log = logging.getLogger(__name__)


class ExecutionStage:
    def __init__(self, chain: Chain, market: MarketSource, outbox: Outbox,
                 in_flight: InFlight, clock: Clock, market_out: MarketOutbox) -> None:
        self._chain = chain
        self._market = market
        self._outbox = outbox
        self._market_out = market_out
        self.in_flight = in_flight
        self._clock = clock
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}

    async def accept(self, work: ExecuteSwap) -> asyncio.Task[None]:
        """Start executing `work`; returns the task (its record is acked once it ended), or
        the one already executing the same attempt (a re-drive waits for it, not twice)."""
        key = (work.order_id, work.attempt)
        running = self._running.get(key)
        if running is not None:
            log.info("%s attempt %d is still executing; re-drive ignored", *key)
            return running
        # One record at a time reaches a stage (its agent awaits each): no second accept of
        # the key can slip in while this one waits for a slot; the task runs only after it
        # is registered here (no await between its creation and this line).
        task = await self.in_flight.spawn(self._execute(work))
        self._running[key] = task
        return task

    async def _execute(self, work: ExecuteSwap) -> None:
        try:
            await self._follow(work)
        finally:
            self._running.pop((work.order_id, work.attempt), None)

    async def _follow(self, work: ExecuteSwap) -> None:
        try:
            submission = await self._submitted(work)
            if submission is None:
                return
            tx = submission.tx
            lands_at_once = tx.lands_at <= self._clock()
            if not lands_at_once:  # the order shows as submitted while the swap is on its way
                await self._report_submitted(work, tx)
                await self._until(tx.lands_at)
            settlement = await self._settled(work, submission)
            if lands_at_once and settlement.tx.status != "confirmed":
                await self._report_submitted(work, tx)  # only a confirmation proves it alone
            await self._report_outcome(work, settlement.tx)
        except Exception:  # outcome unknown: the watchdog re-drives, the chain remembers
            log.exception("execution of %s attempt %d interrupted", work.order_id, work.attempt)
            return
        await self._publish_impact(tx.signature, settlement.moved)

    async def _publish_impact(self, signature: str, moved: tuple[Pool, ...]) -> None:
        if not moved:
            return
        at = self._clock()
        # Ids from the signature: a swap lands once, so its impact has one set of ids.
        events = [snapshot_of(pool, f"swap-{signature}-{n}", at) for n, pool in enumerate(moved)]
        try:
            await self._market_out.market(events)
        except Exception:  # superseded by the next snapshot; the order is already reported
            log.exception("the impact of swap %s on %d pool(s) was not published", signature,
                          len(moved))

    async def _settled(self, work: ExecuteSwap, submission: Submission) -> Settlement:
        """The swap landed: settled by its submission already (it landed at once, or a
        re-drive found it settled), else now, against the market of this moment."""
        if submission.tx.status != "pending":
            return Settlement(submission.tx, submission.moved)
        return await self._chain.settle(submission.tx, work.legs, work.min_amount_out,
                                        self._market.current(), self._clock())

    async def _submitted(self, work: ExecuteSwap) -> Submission | None:
        """The transaction on chain: submitted now or before (re-drive); None if refused.
        One that lands at once is settled by the same statement."""
        try:
            submission = await self._chain.submit(work.order_id, work.attempt, work.signature,
                                                  work.min_amount_out, self._clock(),
                                                  work.legs, self._market.current())
        except TransientChainError as exc:
            await self._report(AttemptFailed, work, stage="submit", error_code=exc.code,
                               message=str(exc), transient=True)
            return None
        if not submission.fresh:
            log.info("%s attempt %d was already submitted; following it", work.order_id,
                     work.attempt)
        return submission

    async def _report_submitted(self, work: ExecuteSwap, tx: ChainTransaction) -> None:
        await self._report(SubmissionSucceeded, work, signature=tx.signature,
                           slot=tx.slot or slot_at(self._clock()))

    async def _report_outcome(self, work: ExecuteSwap, tx: ChainTransaction) -> None:
        if tx.status == "confirmed":
            assert tx.amount_out is not None and tx.slot is not None
            await self._report(SwapConfirmed, work, signature=tx.signature,
                               amount_out=tx.amount_out, slot=tx.slot)
        elif tx.status == "dropped":
            await self._report(AttemptFailed, work, stage="confirm", error_code="BlockhashExpired",
                               message="transaction expired before it landed",
                               transient=True)
        else:
            await self._report(AttemptFailed, work, stage="confirm",
                               error_code=tx.error_code or "TransactionFailed",
                               message=f"swap would pay {tx.amount_out} base units, "
                                       f"below minAmountOut {work.min_amount_out}",
                               transient=False)

    async def _until(self, moment: datetime) -> None:
        delay = (moment - self._clock()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _report(self, kind: type[Command], work: ExecuteSwap, **fields: Any) -> None:
        report = kind(command_id=str(uuid.uuid4()), order_id=work.order_id,  # type: ignore[call-arg]
                      issued_at=self._clock(), attempt=work.attempt, **fields)
        await (await self._outbox.command(report))
