"""A simulated Solana chain, kept in PostgreSQL so every worker process sees the same ledger.

Consumes swap submissions from the execution stage and answers what happened to them.
Submitting is one atomic step, idempotent by signature (`INSERT .. ON CONFLICT DO NOTHING
RETURNING`, the signature is the primary key): whoever inserts the row submitted it
(`Submission.fresh`); every other submit of that signature, a re-drive or a racing duplicate,
is told it was already submitted and follows the one transaction. Each signature's fate
(transient RPC error, dropped, confirm delay) is drawn from a hash of the signature and the
seed, so a re-drive sees the same fate it had the first time. The swap is settled at landing
time against the market of that moment, which is where slippage protection bites (a swap that
lands at once is settled by the submitting statement itself); a confirmed swap moves the pools
it traded through (`Settlement.moved`), which the execution stage publishes so the next quote
sees its impact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.market import Market
from domain.pools import Pool
from domain.quotes import RouteLeg
from domain.routing import NoRoute, execute_legs

SLOT_SECONDS = Decimal("0.4")


class TransientChainError(Exception):
    """The RPC node refused the submission (nothing landed); worth another attempt."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ChainFate:
    """What the simulated network will do with one signature."""

    rejected_at_submit: bool
    dropped: bool
    confirm_delay_ms: int


@dataclass(frozen=True, slots=True)
class ChainTransaction:
    signature: str
    order_id: str
    attempt: int
    status: str  # pending | confirmed | failed | dropped
    lands_at: datetime
    slot: int | None
    amount_out: int | None
    error_code: str | None


@dataclass(frozen=True, slots=True)
class Submission:
    tx: ChainTransaction
    fresh: bool  # this call submitted it (False: it was already submitted)
    # The pools as the swap left them, when this call submitted a swap that landed (and was
    # confirmed) as it was submitted; else empty.
    moved: tuple[Pool, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    tx: ChainTransaction
    # The pools as this swap left them; empty unless this call landed a confirmed swap.
    moved: tuple[Pool, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainPolicy:
    seed: int
    failure_rate: float
    confirm_delay_min_ms: int
    confirm_delay_max_ms: int

    def fate(self, signature: str) -> ChainFate:
        digest = hashlib.sha256(f"{self.seed}:{signature}".encode()).digest()
        roll = int.from_bytes(digest[:8], "big") / 2**64
        spread = self.confirm_delay_max_ms - self.confirm_delay_min_ms
        delay = self.confirm_delay_min_ms + int.from_bytes(digest[8:12], "big") % (spread + 1)
        failing = roll < self.failure_rate
        # Half of the transient failures are refused by the RPC node, half are dropped later.
        at_submit = failing and digest[12] % 2 == 0
        return ChainFate(rejected_at_submit=at_submit, dropped=failing and not at_submit,
                         confirm_delay_ms=delay)


def slot_at(moment: datetime) -> int:
    return int(Decimal(str(moment.timestamp())) / SLOT_SECONDS)


class SimulatedChain:
    def __init__(self, pool: AsyncConnectionPool, policy: ChainPolicy) -> None:
        self._pool = pool
        self._policy = policy

    async def find(self, signature: str) -> ChainTransaction | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM sim_chain_transactions WHERE signature = %s",
                              (signature,))
            row = await cur.fetchone()
        return _transaction(row) if row else None

    async def submit(self, order_id: str, attempt: int, signature: str, min_amount_out: int,
                     now: datetime, legs: tuple[RouteLeg, ...] = (),
                     market: Market | None = None) -> Submission:
        """Send the transaction unless it was sent before; either way, the one transaction.

        A transaction whose fate is to land at once (no confirmation delay) is settled in the
        same statement against `market` when one is given: one round trip, not two.
        Raises TransientChainError if the RPC node refuses it (nothing is sent: a signature's
        fate is fixed, so a refused signature is never on chain)."""
        fate = self._policy.fate(signature)
        if fate.rejected_at_submit:
            raise TransientChainError("NodeUnhealthy", "RPC node is behind; transaction not sent")
        lands_at = now + timedelta(milliseconds=fate.confirm_delay_ms)
        status, amount_out, error, after = "pending", None, None, None
        if market is not None and lands_at <= now:
            status, amount_out, error, after = self._outcome(signature, legs, min_amount_out,
                                                             market)
        settled_at = None if status == "pending" else now
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """INSERT INTO sim_chain_transactions
                     (signature, order_id, attempt, min_amount_out, submitted_at, lands_at, status,
                      amount_out, error_code, slot, settled_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (signature) DO NOTHING
                   RETURNING *""",
                (signature, order_id, attempt, min_amount_out, now, lands_at, status, amount_out,
                 error, None if settled_at is None else slot_at(now), settled_at),
            )
            row = await cur.fetchone()
        if row is not None:
            if after is not None and market is not None:  # confirmed as it was submitted
                return Submission(_transaction(row), fresh=True, moved=after.moved_since(market))
            return Submission(_transaction(row), fresh=True)
        # A separate statement: the INSERT's snapshot predates a racing submitter's commit.
        known = await self.find(signature)
        assert known is not None, "a conflicting signature is on chain"
        return Submission(known, fresh=False)

    async def settle(self, tx: ChainTransaction, legs: tuple[RouteLeg, ...],
                     min_amount_out: int, market: Market, now: datetime) -> Settlement:
        """Land a pending transaction (once): execute the swap against the market of now."""
        if tx.status != "pending":
            return Settlement(tx)
        status, amount_out, error, after = self._outcome(tx.signature, legs, min_amount_out,
                                                         market)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """UPDATE sim_chain_transactions
                      SET status = %s, amount_out = %s, error_code = %s, slot = %s, settled_at = %s
                    WHERE signature = %s AND status = 'pending'
                RETURNING *""",
                (status, amount_out, error, slot_at(now), now, tx.signature),
            )
            row = await cur.fetchone()
        if row is None:  # another worker settled it first: its answer (and impact) stand
            settled = await self.find(tx.signature)
            assert settled is not None
            return Settlement(settled)
        return Settlement(_transaction(row), after.moved_since(market) if after else ())

    def _outcome(self, signature: str, legs: tuple[RouteLeg, ...], min_amount_out: int,
                 market: Market) -> tuple[str, int | None, str | None, Market | None]:
        if self._policy.fate(signature).dropped:
            return "dropped", None, "BlockhashExpired", None
        try:
            amount_out, after = execute_legs(market, legs)
        except NoRoute:  # the pool was pulled or cannot fill the slice any more
            return "failed", None, "InsufficientLiquidity", None
        if amount_out < min_amount_out:
            return "failed", amount_out, "SlippageToleranceExceeded", None
        return "confirmed", amount_out, None, after


def _transaction(row: dict[str, object]) -> ChainTransaction:
    amount = row["amount_out"]
    slot = row["slot"]
    lands_at = row["lands_at"]
    assert isinstance(lands_at, datetime)
    return ChainTransaction(
        signature=str(row["signature"]),
        order_id=str(row["order_id"]),
        attempt=int(str(row["attempt"])),
        status=str(row["status"]),
        lands_at=lands_at,
        slot=int(str(slot)) if slot is not None else None,
        amount_out=int(str(amount)) if amount is not None else None,
        error_code=str(row["error_code"]) if row["error_code"] is not None else None,
    )
