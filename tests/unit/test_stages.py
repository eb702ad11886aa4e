"""The routing and execution stages with in-memory ports: the report each work item yields."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from domain.market import Market
from domain.orders.commands import AttemptFailed, RouteFound, RouteNotFound, SubmissionSucceeded, \
    SwapConfirmed
from domain.orders.signatures import transaction_signature
from domain.quotes import RouteLeg
from domain.routing import best_route
from domain.tokens import SOL, USDC
from domain.work import ExecuteSwap, QuoteRoute
from domain.market_events import PoolSnapshot
from domain.pools import Pool
from streams.chain import ChainTransaction, Settlement, Submission, TransientChainError
from streams.execution_stage import ExecutionStage
from streams.in_flight import InFlight
from marketdata.view import MarketView
from streams.routing_stage import RoutingStage
from tests.unit.stream_fakes import FakeClock, FakeOutbox, InstantVenues

UNKNOWN_MINT = "Unknown1111111111111111111111111111111111111"


def routing(outbox: FakeOutbox) -> tuple[RoutingStage, InstantVenues]:
    venues = InstantVenues()
    stage = RoutingStage(MarketView(Market.default()), venues, outbox, InFlight(10), FakeClock())
    return stage, venues


def quote(order_id: str = "o-1", token_out: str = USDC.mint) -> QuoteRoute:
    return QuoteRoute(order_id=order_id, attempt=2, token_in=SOL.mint, token_out=token_out,
                      amount_in=1_000_000_000)


async def test_the_routing_stage_reports_the_route_found_for_the_attempt() -> None:
    outbox = FakeOutbox()
    stage, venues = routing(outbox)

    await stage.accept(quote())
    await stage.in_flight.drain()

    (report,) = outbox.of("command")
    assert isinstance(report, RouteFound)
    assert report.order_id == "o-1" and report.attempt == 2
    assert report.decision == best_route(Market.default(), SOL.mint, USDC.mint, 1_000_000_000)
    assert venues.asked == 1


async def test_the_routing_stage_reports_a_pair_without_a_route_as_permanent() -> None:
    outbox = FakeOutbox()
    stage, _ = routing(outbox)

    await stage.accept(quote(token_out=UNKNOWN_MINT))
    await stage.in_flight.drain()

    (report,) = outbox.of("command")
    assert isinstance(report, RouteNotFound) and not report.transient


class FakeChain:
    """A ledger in a dict: submit records the transaction pending, landing `lands_in` after
    it; settle confirms it (or fails it, with `fails`)."""

    def __init__(self, refuse: bool = False, moved: tuple[Pool, ...] = (),
                 lands_in: timedelta = timedelta(0), fails: bool = False) -> None:
        self.refuse = refuse
        self.moved = moved
        self.lands_in = lands_in
        self.fails = fails
        self.ledger: dict[str, ChainTransaction] = {}
        self.submits = 0

    async def submit(self, order_id: str, attempt: int, signature: str, min_amount_out: int,
                     now: datetime, legs: tuple[RouteLeg, ...] = (),
                     market: Market | None = None) -> Submission:
        self.submits += 1
        if self.refuse:
            raise TransientChainError("NodeUnhealthy", "RPC node is behind")
        if signature in self.ledger:
            return Submission(self.ledger[signature], fresh=False)
        tx = ChainTransaction(signature=signature, order_id=order_id, attempt=attempt,
                              status="pending", lands_at=now + self.lands_in, slot=None,
                              amount_out=None,
                              error_code=None)
        self.ledger[signature] = tx
        return Submission(tx, fresh=True)

    async def settle(self, tx: ChainTransaction, legs: tuple[RouteLeg, ...],
                     min_amount_out: int, market: Market, now: datetime) -> Settlement:
        amount_out = sum(leg.amount_out for leg in legs)
        if self.fails:
            settled = dataclasses.replace(tx, status="failed", slot=7, amount_out=amount_out,
                                          error_code="SlippageToleranceExceeded")
            self.ledger[tx.signature] = settled
            return Settlement(settled)
        settled = dataclasses.replace(tx, status="confirmed", slot=7, amount_out=amount_out)
        self.ledger[tx.signature] = settled
        return Settlement(settled, self.moved)


def swap(order_id: str = "o-1", attempt: int = 1) -> ExecuteSwap:
    decision = best_route(Market.default(), SOL.mint, USDC.mint, 1_000_000_000)
    return ExecuteSwap(order_id=order_id, attempt=attempt,
                       signature=transaction_signature(order_id, attempt), legs=decision.legs,
                       min_amount_out=decision.amount_out * 99 // 100)


def execution(chain: FakeChain, outbox: FakeOutbox) -> ExecutionStage:
    return ExecutionStage(chain, MarketView(Market.default()), outbox, InFlight(10), FakeClock(),
                          outbox)


def sol_usdc(venue: str) -> Pool:
    pool = Market.default().pool(venue, SOL.mint, USDC.mint)
    assert pool is not None
    return pool


async def test_a_confirmed_swap_publishes_its_pools_after_the_confirmation() -> None:
    moved = (sol_usdc("raydium"), sol_usdc("meteora"))
    chain, outbox = FakeChain(moved=moved), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.in_flight.drain()

    assert [s.kind for s in outbox.sent] == ["command", "market", "market"]
    snapshots = outbox.of("market")
    assert all(isinstance(s, PoolSnapshot) for s in snapshots)
    assert [s.pool() for s in snapshots] == list(moved)
    signature = transaction_signature("o-1", 1)
    assert [s.event_id for s in snapshots] == [f"swap-{signature}-0", f"swap-{signature}-1"]


async def test_an_impact_that_cannot_be_published_leaves_the_confirmation_standing() -> None:
    chain, outbox = FakeChain(moved=(sol_usdc("raydium"),)), FakeOutbox()
    stage = execution(chain, outbox)
    outbox.reject_next = 0

    async def refused(events: object) -> None:
        raise ConnectionError("market topic unavailable")

    outbox.market = refused  # type: ignore[method-assign]
    await stage.accept(swap())
    await stage.in_flight.drain()

    assert [type(r) for r in outbox.of("command")] == [SwapConfirmed]
    assert outbox.of("market") == []


async def test_the_execution_stage_reports_the_submission_then_the_confirmation() -> None:
    chain, outbox = FakeChain(lands_in=timedelta(milliseconds=5)), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.in_flight.drain()

    submitted, confirmed = outbox.of("command")
    assert isinstance(submitted, SubmissionSucceeded) and submitted.attempt == 1
    assert isinstance(confirmed, SwapConfirmed)
    assert confirmed.signature == transaction_signature("o-1", 1) and confirmed.slot == 7
    assert chain.ledger[confirmed.signature].status == "confirmed"


async def test_a_swap_that_lands_as_it_is_submitted_is_reported_by_its_confirmation() -> None:
    """The writer decides the submission from the confirmation (test_order_decide), so
    the stage sends one report, not two, when there is nothing to wait for in between."""
    chain, outbox = FakeChain(), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.in_flight.drain()

    (confirmed,) = outbox.of("command")
    assert isinstance(confirmed, SwapConfirmed) and confirmed.attempt == 1
    assert chain.ledger[confirmed.signature].status == "confirmed"


async def test_a_swap_that_fails_as_it_lands_is_reported_submitted_then_failed() -> None:
    """Only a confirmation proves the submission: a failure at landing is reported after it."""
    chain, outbox = FakeChain(fails=True), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.in_flight.drain()

    submitted, failed = outbox.of("command")
    assert isinstance(submitted, SubmissionSucceeded)
    assert isinstance(failed, AttemptFailed) and failed.stage == "confirm"
    assert failed.error_code == "SlippageToleranceExceeded" and not failed.transient


async def test_a_refused_submission_is_reported_as_a_transient_attempt_failure() -> None:
    chain, outbox = FakeChain(refuse=True), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.in_flight.drain()

    (failed,) = outbox.of("command")
    assert isinstance(failed, AttemptFailed)
    assert failed.stage == "submit" and failed.transient and failed.error_code == "NodeUnhealthy"
    assert chain.ledger == {}


async def test_a_re_drive_of_a_swap_still_executing_is_a_no_op() -> None:
    chain, outbox = FakeChain(), FakeOutbox()
    stage = execution(chain, outbox)

    await stage.accept(swap())
    await stage.accept(swap())  # the watchdog re-drives before the first task got anywhere
    await stage.in_flight.drain()

    assert chain.submits == 1
    assert [type(r) for r in outbox.of("command")] == [SwapConfirmed]


async def test_a_stage_hands_back_the_task_its_record_is_acked_after() -> None:
    """A work item's record is acked once its task ended (streams.app `consume`): accept
    returns that task, and a re-drive of an attempt still executing returns the same one."""
    chain, outbox = FakeChain(), FakeOutbox()
    stage = execution(chain, outbox)

    task = await stage.accept(swap())
    again = await stage.accept(swap())

    assert again is task and not task.done() and outbox.of("command") == []
    await task
    assert [type(r) for r in outbox.of("command")] == [SwapConfirmed]
    assert (await stage.accept(swap())) is not task  # ended: a later re-drive runs anew
