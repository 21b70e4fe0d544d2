"""Engagement: one point per distinct (user, UTC day) with a successful use, capped per user.

What earns nothing, and why:
- the creator's own use (`is_creator`, and any use by the account that now owns the GPT, so
  linking a second identity after using one's own GPT with it cannot turn self-use into points);
- previews, failed, blocked and interrupted uses (only status `ok` counts);
- a GPT the operator took down — its points vanish from every period not yet closed.
One user gives one GPT at most `cap` points per period, so one person hammering a GPT every day
earns it no more than `cap`, and a thousand uses in a day earn one point.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ColumnElement, and_, case, false, func
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import Account, Gpt, Invocation, InvocationStatus
from store.rewards import PayoutSettings


@dataclass(frozen=True, slots=True)
class GptPoints:
    gpt_id: int
    creator_id: int
    users: int  # distinct people with a counted use
    user_days: int  # distinct (user, day) pairs before the cap
    points: int  # after the per-user cap


def not_taken_down() -> ColumnElement[bool]:
    """The GPT still earns: no takedown recorded, however the takedown is stored.

    Issue 6 records a takedown as `Gpt.taken_down_at` (a time) ; a boolean `taken_down` flag or a
    `taken_down` status are honoured too, so the rule holds whichever shape the table has.
    """
    clauses: list[ColumnElement[bool]] = [Gpt.status != "taken_down"]  # type: ignore[list-item]
    table = Gpt.__table__  # type: ignore[attr-defined]
    for name in ("taken_down_at", "taken_down"):
        column = table.c.get(name)
        if column is None:
            continue
        clauses.append(column == false() if isinstance(column.type, Boolean) else column.is_(None))
    return and_(*clauses)


def counted_uses(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    """The invocations that can earn in [start, end)."""
    return [
        Invocation.status == InvocationStatus.OK,  # type: ignore[list-item]
        Invocation.is_creator == false(),  # type: ignore[list-item]
        Invocation.is_preview == false(),  # type: ignore[list-item]
        Invocation.account_id != Gpt.creator_id,  # type: ignore[list-item]
        Invocation.created_at >= start,  # type: ignore[list-item]
        Invocation.created_at < end,  # type: ignore[list-item]
        not_taken_down(),
    ]


async def gpt_points(session: AsyncSession, *, start: datetime, end: datetime, cap: int) -> list[GptPoints]:
    """Points of every GPT with at least one counted use in [start, end), ordered by GPT id."""
    per_user = (
        select(
            Invocation.gpt_id.label("gpt_id"),  # type: ignore[attr-defined]
            Gpt.creator_id.label("creator_id"),  # type: ignore[attr-defined]
            Invocation.account_id.label("user_id"),  # type: ignore[attr-defined]
            func.count(func.distinct(Invocation.day)).label("days"),
        )
        .join(Gpt, Gpt.id == Invocation.gpt_id)  # type: ignore[arg-type]
        .where(*counted_uses(start, end))
        .group_by(col(Invocation.gpt_id), col(Gpt.creator_id), col(Invocation.account_id))
        .subquery()
    )
    capped = case((per_user.c.days > cap, cap), else_=per_user.c.days)
    rows = await session.execute(
        sa_select(
            per_user.c.gpt_id, per_user.c.creator_id, func.count(), func.sum(per_user.c.days), func.sum(capped)
        )
        .group_by(per_user.c.gpt_id, per_user.c.creator_id)
        .order_by(per_user.c.gpt_id)
    )
    return [GptPoints(int(g), int(c), int(u), int(d), int(p)) for g, c, u, d, p in rows.all()]


def by_creator(points: Iterable[GptPoints]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for item in points:
        totals[item.creator_id] = totals.get(item.creator_id, 0) + item.points
    return totals


async def ineligible(session: AsyncSession, account_ids: Iterable[int], regions: Iterable[str]) -> dict[int, str]:
    """Why each of these creators is left out of the split ('' when they are in).

    Not opted in (no payout settings, or opted out) → 'not_opted_in'; a region outside the
    configured list (when there is one) → 'region'; an account the operator banned → 'banned'.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    allowed = {region.strip().upper() for region in regions if region.strip()}
    found = {
        row.account_id: row
        for row in (
            await session.execute(select(PayoutSettings).where(col(PayoutSettings.account_id).in_(ids)))
        ).scalars()
    }
    banned: set[int] = set()
    banned_at = Account.__table__.c.get("banned_at")  # type: ignore[attr-defined]
    if banned_at is not None:
        banned = set(
            (await session.execute(select(Account.id).where(col(Account.id).in_(ids), banned_at.is_not(None))))
            .scalars()
        )
    reasons: dict[int, str] = {}
    for account_id in ids:
        settings = found.get(account_id)
        if account_id in banned:
            reasons[account_id] = "banned"
        elif settings is None or not settings.opted_in:
            reasons[account_id] = "not_opted_in"
        elif allowed and settings.region.upper() not in allowed:
            reasons[account_id] = "region"
        else:
            reasons[account_id] = ""
    return reasons
