"""The double-entry ledger: every movement of money is a transaction whose legs sum to zero.

Accounts are names, not rows:
- `operator` — where the pool comes from and where an unallocated pool returns (its balance is
  minus what the operator has committed to creators);
- `pool:<period id>` — a period's pool, funded at its close and emptied by the split in the same
  transaction;
- `creator:<account id>` — what the store owes a creator and has not paid out yet: a balance under
  the minimum payout simply stays here, which is the carry-over to the next period;
- `payout:<account id>` — what has been handed to the operator's payment system for a creator.

A balance is never stored: it is the sum of the account's entries. Transactions are append-only and
carry a unique idempotency key, so a retried or raced post cannot happen twice; the balance rule is
checked here (by construction) and again by the database's triggers (0004_rewards).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import utcnow
from store.rewards import LedgerEntry, LedgerTransaction

OPERATOR = "operator"


def pool(period_id: int) -> str:
    return f"pool:{period_id}"


def creator(account_id: int) -> str:
    return f"creator:{account_id}"


def payout(account_id: int) -> str:
    return f"payout:{account_id}"


class Unbalanced(ValueError):
    """Legs that do not sum to zero, or fewer than two: refused before reaching the database."""


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    amount: int


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of an account's statement, with the running balance after it."""

    at: datetime
    key: str
    kind: str
    memo: str
    amount: int
    balance: int


async def lock_money(session: AsyncSession) -> None:
    """Serialize every writer of balances (closes, account merges) for this database transaction.

    Must be the first statement of the session. SQLite: BEGIN IMMEDIATE takes the write lock now,
    so reads made before our writes cannot go stale. PostgreSQL: a transaction-scoped advisory
    lock, released at commit or rollback — also when the process dies.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))
    else:
        await session.execute(text("SELECT pg_advisory_xact_lock(7007001)"))


async def post(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    legs: Iterable[Leg],
    currency: str,
    period_id: int | None = None,
    memo: str = "",
) -> bool:
    """Write one balanced transaction; False (and nothing written) if `key` was posted before.

    Zero legs are dropped; legs on one account are kept apart (each is a line of its statement).
    Entries go first, the header last: the header's insert is where the database checks the sum.
    """
    kept = [leg for leg in legs if leg.amount != 0]
    for leg in kept:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise Unbalanced(f"{leg.account}: amounts are integers of micro-units")
        if not leg.account or len(leg.account) > 64:
            raise Unbalanced(f"bad account name {leg.account!r}")
    if len(kept) < 2 or sum(leg.amount for leg in kept) != 0:
        raise Unbalanced(f"transaction {key} does not balance: {[(leg.account, leg.amount) for leg in kept]}")
    exists = await session.execute(
        select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == key)
    )
    if exists.first() is not None:
        return False
    now = utcnow()
    await session.execute(
        insert(LedgerEntry),
        [
            {"txn_key": key, "account": leg.account, "amount_micros": leg.amount, "currency": currency, "created_at": now}
            for leg in kept
        ],
    )
    await session.execute(
        insert(LedgerTransaction).values(
            idempotency_key=key, kind=kind, period_id=period_id, memo=memo[:300], created_at=now
        )
    )
    return True


async def balance(session: AsyncSession, account: str) -> int:
    total = (
        await session.execute(
            select(func.coalesce(func.sum(LedgerEntry.amount_micros), 0)).where(LedgerEntry.account == account)
        )
    ).scalar_one()
    return int(total)


async def balances(session: AsyncSession, *, prefix: str = "") -> dict[str, int]:
    """Every account's balance (optionally those starting with `prefix`), by name."""
    query = select(LedgerEntry.account, func.sum(LedgerEntry.amount_micros)).group_by(col(LedgerEntry.account))
    if prefix:
        query = query.where(col(LedgerEntry.account).startswith(prefix))
    return {account: int(total) for account, total in (await session.execute(query.order_by(col(LedgerEntry.account)))).all()}


async def creator_balances(session: AsyncSession, account_ids: Iterable[int]) -> dict[int, int]:
    names = {creator(account_id): account_id for account_id in account_ids}
    if not names:
        return {}
    rows = await session.execute(
        select(LedgerEntry.account, func.sum(LedgerEntry.amount_micros))
        .where(col(LedgerEntry.account).in_(names))
        .group_by(col(LedgerEntry.account))
    )
    found = {names[account]: int(total) for account, total in rows.all()}
    return {account_id: found.get(account_id, 0) for account_id in names.values()}


async def creators_with_balance(session: AsyncSession) -> dict[int, int]:
    """Creators whose balance is not zero (what is carried over), by account id."""
    return {
        int(account.split(":", 1)[1]): total
        for account, total in (await balances(session, prefix="creator:")).items()
        if total != 0
    }


async def statement(session: AsyncSession, account: str) -> list[Line]:
    rows = await session.execute(
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == LedgerEntry.txn_key)  # type: ignore[arg-type]
        .where(LedgerEntry.account == account)
        .order_by(col(LedgerEntry.id))
    )
    lines: list[Line] = []
    running = 0
    for entry, txn in rows.all():
        running += entry.amount_micros
        lines.append(Line(txn.created_at, txn.idempotency_key, txn.kind, txn.memo, entry.amount_micros, running))
    return lines


async def unbalanced(session: AsyncSession) -> list[str]:
    """Keys of transactions whose entries do not sum to zero — always empty; an audit, not a fix."""
    rows = await session.execute(
        select(LedgerEntry.txn_key)
        .group_by(col(LedgerEntry.txn_key))
        .having(func.sum(LedgerEntry.amount_micros) != 0)
    )
    return list(rows.scalars())
