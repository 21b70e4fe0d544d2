"""Statements: what each creator got from each close, for their DMs, `/gpt earnings` and the export.

A close writes one statement per creator who earned points or carried a balance; nothing here
changes money. Delivery is tracked per statement (`delivered_at`), so a statement reaches a DM at
most once even if several replicas deliver, and one that could not be delivered is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.money import format_micros
from billing.payouts import reveal
from store.models import Account, Gpt, Identity, utcnow
from store.rewards import AccountMerge, GptScore, PayoutSettings, RewardClose, RewardPeriod, RewardStatement


@dataclass(frozen=True, slots=True)
class StatementView:
    statement: RewardStatement
    starts_at: datetime
    ends_at: datetime
    gpts: tuple[tuple[str, int], ...] = ()  # (GPT name, points), best first


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a statement goes: the creator's user id on one platform and their language."""

    statement_id: int
    user_id: str
    locale: str


async def account_ids(session: AsyncSession, account_id: int) -> list[int]:
    """This account and every account joined into it by a link (their history is theirs)."""
    merged = await session.execute(select(AccountMerge.from_account_id).where(AccountMerge.into_account_id == account_id))
    return [account_id, *merged.scalars()]


async def _views(session: AsyncSession, rows: list[tuple[RewardStatement, RewardPeriod]]) -> list[StatementView]:
    views = []
    for statement, period in rows:
        scores = await session.execute(
            select(Gpt.name, GptScore.points)
            .join(Gpt, Gpt.id == GptScore.gpt_id)  # type: ignore[arg-type]
            .where(GptScore.period_id == statement.period_id, GptScore.creator_id == statement.account_id)
            .order_by(col(GptScore.points).desc(), col(GptScore.gpt_id))
        )
        views.append(StatementView(statement, period.starts_at, period.ends_at, tuple(scores.tuples().all())))
    return views


async def for_account(session: AsyncSession, account_id: int, *, limit: int = 6) -> list[StatementView]:
    """The most recent statements first, including those of accounts joined into this one."""
    ids = await account_ids(session, account_id)
    rows = await session.execute(
        select(RewardStatement, RewardPeriod)
        .join(RewardPeriod, RewardPeriod.id == RewardStatement.period_id)  # type: ignore[arg-type]
        .where(col(RewardStatement.account_id).in_(ids))
        .order_by(col(RewardPeriod.starts_at).desc(), col(RewardStatement.id).desc())
        .limit(limit)
    )
    return await _views(session, list(rows.tuples().all()))


async def get(session: AsyncSession, statement_id: int) -> StatementView | None:
    row = (
        await session.execute(
            select(RewardStatement, RewardPeriod)
            .join(RewardPeriod, RewardPeriod.id == RewardStatement.period_id)  # type: ignore[arg-type]
            .where(RewardStatement.id == statement_id)
        )
    ).tuples().first()
    return (await _views(session, [row]))[0] if row else None


async def pending(session: AsyncSession, *, platform: str, limit: int = 100) -> list[Recipient]:
    """Undelivered statements of creators who have an identity on `platform`, oldest first."""
    rows = await session.execute(
        select(RewardStatement.id, Identity.external_id, Account.locale)
        .join(Identity, Identity.account_id == RewardStatement.account_id)  # type: ignore[arg-type]
        .join(Account, Account.id == RewardStatement.account_id)  # type: ignore[arg-type]
        .where(col(RewardStatement.delivered_at).is_(None), Identity.platform == platform)
        .order_by(col(RewardStatement.id), col(Identity.id))
        .limit(limit)
    )
    seen: set[int] = set()
    found = []
    for statement_id, user_id, locale in rows.all():
        if statement_id not in seen:  # one DM per statement even with several identities there
            seen.add(statement_id)
            found.append(Recipient(statement_id, user_id, locale))
    return found


async def mark_delivered(session: AsyncSession, statement_id: int) -> bool:
    """True for the one caller that delivers it; a racing replica gets False and sends nothing."""
    result = await session.execute(
        update(RewardStatement)
        .where(col(RewardStatement.id) == statement_id, col(RewardStatement.delivered_at).is_(None))
        .values(delivered_at=utcnow())
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def unmark_delivered(session: AsyncSession, statement_id: int) -> None:
    """The platform refused the DM: try again next time."""
    await session.execute(update(RewardStatement).where(col(RewardStatement.id) == statement_id).values(delivered_at=None))


async def close_summary(session: AsyncSession, period_id: int) -> RewardClose | None:
    return await session.get(RewardClose, period_id)


async def export_rows(
    session: AsyncSession, period_id: int, *, key: str | None, payouts_only: bool = True
) -> list[dict[str, Any]]:
    """One row per creator payout of a closed period (or per statement with `payouts_only=False`).

    Amounts are integers of micro-units with the decimal beside them; `destination` is the clear
    destination when the payout key can decrypt it, else empty (the mask is always there).
    """
    query = (
        select(RewardStatement, RewardPeriod, Account, PayoutSettings)
        .join(RewardPeriod, RewardPeriod.id == RewardStatement.period_id)  # type: ignore[arg-type]
        .join(Account, Account.id == RewardStatement.account_id)  # type: ignore[arg-type]
        .outerjoin(PayoutSettings, PayoutSettings.account_id == RewardStatement.account_id)  # type: ignore[arg-type]
        .where(RewardStatement.period_id == period_id)
        .order_by(col(RewardStatement.account_id))
    )
    if payouts_only:
        query = query.where(col(RewardStatement.payout_micros) > 0)
    rows = []
    for statement, period, account, settings in (await session.execute(query)).tuples().all():
        rows.append({
            "statement_id": statement.id,
            "period_id": period.id,
            "period_start": period.starts_at.isoformat(),
            "period_end": period.ends_at.isoformat(),
            "account_id": statement.account_id,
            "creator": account.display_name,
            "eligible": statement.eligible,
            "reason": statement.reason,
            "points": statement.points,
            "share_micros": statement.share_micros,
            "carried_in_micros": statement.carried_in_micros,
            "payout_micros": statement.payout_micros,
            "carried_out_micros": statement.carried_out_micros,
            "payout": format_micros(statement.payout_micros),
            "currency": statement.currency,
            "region": statement.region,
            "destination_mask": statement.destination_mask,
            "destination": (reveal(settings, key) or "") if settings is not None and statement.payout_micros else "",
        })
    return rows
