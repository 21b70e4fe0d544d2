"""The operator's controls over the whole store: takedowns, bans, reports.

Why in the database and nowhere else: the bot reads these on every request (store/policy.py's
catalogue filter, bot/policy.require), so a change made by `gptstore` on any machine holds on the
next request of every replica. Each change is audited (an AuditEntry without a workspace).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import Account, Gpt, Identity, Report, utcnow
from store.policy import audit


async def take_down(session: AsyncSession, gpt: Gpt, reason: str) -> None:
    await session.execute(
        update(Gpt).where(Gpt.id == gpt.id).values(taken_down_at=utcnow(), takedown_reason=reason[:500])  # type: ignore[arg-type]
    )
    audit(session, workspace_id=None, actor_id=None, actor_name="operator", action="takedown", target=gpt.slug,
          detail=reason)


async def restore(session: AsyncSession, gpt: Gpt) -> None:
    await session.execute(
        update(Gpt).where(Gpt.id == gpt.id).values(taken_down_at=None, takedown_reason=None)  # type: ignore[arg-type]
    )
    audit(session, workspace_id=None, actor_id=None, actor_name="operator", action="restore", target=gpt.slug)


async def set_banned(session: AsyncSession, account: Account, reason: str | None) -> None:
    """Ban (with a reason) or unban (None) a creator."""
    await session.execute(
        update(Account).where(Account.id == account.id)  # type: ignore[arg-type]
        .values(banned_at=utcnow() if reason is not None else None, ban_reason=reason[:500] if reason else None)
    )
    audit(session, workspace_id=None, actor_id=None, actor_name="operator", action="ban" if reason is not None else "unban",
          target=f"account:{account.id}", detail=reason or "")


async def find_account(session: AsyncSession, ref: str) -> Account | None:
    """An account by id (`42`), platform identity (`discord:1234`) or unique display name."""
    ref = ref.strip()
    if ref.isdigit():
        return await session.get(Account, int(ref))
    platform, sep, external = ref.partition(":")
    if sep and external:
        rows = await session.execute(
            select(Account).join(Identity, Identity.account_id == Account.id)  # type: ignore[arg-type]
            .where(Identity.platform == platform, Identity.external_id == external)
        )
        if (found := rows.scalar_one_or_none()) is not None:
            return found
    named = list((await session.execute(select(Account).where(Account.display_name == ref))).scalars())
    return named[0] if len(named) == 1 else None


async def reports(session: AsyncSession, *, include_closed: bool = False) -> list[tuple[Report, Gpt, Account]]:
    query = (
        select(Report, Gpt, Account)
        .join(Gpt, Gpt.id == Report.gpt_id)  # type: ignore[arg-type]
        .join(Account, Account.id == Report.account_id)  # type: ignore[arg-type]
    )
    if not include_closed:
        query = query.where(Report.status == "open")
    rows = await session.execute(query.order_by(col(Report.id)))
    return [(report, gpt, account) for report, gpt, account in rows.all()]
