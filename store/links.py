"""Linking identities: one-time codes, and joining one account into another.

A person proves they hold both identities by asking for a code on one platform and entering it on
the other. Only the code's hash is stored; it expires, and its use is a conditional UPDATE, so a
code is good once however many times it is entered at the same moment.

The join moves everything that belongs to a person to the surviving account (identities, GPTs,
uses, conversations, ratings, reports, feedback, drafts, payout settings) inside the caller's
transaction. Rows that would collide with the survivor's own (two ratings of one GPT) keep the
survivor's; ratings that become ratings of one's own GPT are dropped. The joined account's row
stays as a tombstone (other tables may still point at it) and an `accountmerge` row records the
join, so its past statements show under the survivor.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from store.models import (
    BuilderDraft,
    Conversation,
    Feedback,
    Gpt,
    Identity,
    Invocation,
    Rating,
    Report,
    utcnow,
)
from store.rewards import AccountMerge, LinkCode, PayoutSettings

log = logging.getLogger(__name__)

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand
CODE_TTL = timedelta(minutes=15)


class LinkRefused(Exception):
    """The code cannot join these accounts; `msgid` is written for the person who entered it."""

    def __init__(self, msgid: str) -> None:
        super().__init__(msgid)
        self.msgid = msgid


@dataclass(frozen=True, slots=True)
class Joined:
    source_id: int
    target_id: int
    gpts: int
    identities: int


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


async def issue_code(session: AsyncSession, *, account_id: int, platform: str, now: datetime | None = None) -> str:
    """A fresh code for this account; its earlier unused codes stop working."""
    now = now or utcnow()
    await session.execute(delete(LinkCode).where(col(LinkCode.account_id) == account_id, col(LinkCode.used_at).is_(None)))
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    session.add(LinkCode(code_hash=code_hash(raw), account_id=account_id, platform=platform, created_at=now,
                         expires_at=now + CODE_TTL))
    await session.flush()
    return f"{raw[:5]}-{raw[5:]}"


async def redeem_code(session: AsyncSession, *, code: str, account_id: int, now: datetime | None = None) -> int:
    """The account that issued `code`, which is now spent; LinkRefused otherwise."""
    now = now or utcnow()
    row = (await session.execute(select(LinkCode).where(LinkCode.code_hash == code_hash(code)))).scalar_one_or_none()
    if row is None or len(_normalize(code)) != 10:
        raise LinkRefused("This link code is not valid. Ask for a new one with `/gpt link` on your other account.")
    if row.used_at is not None:
        raise LinkRefused("This link code was already used. Ask for a new one with `/gpt link`.")
    if row.account_id == account_id:
        raise LinkRefused("This code is yours: enter it with `/gpt link <code>` on your other platform or account.")
    if row.expires_at <= now:
        raise LinkRefused("This link code has expired. Ask for a new one with `/gpt link`.")
    spent = await session.execute(
        update(LinkCode).where(col(LinkCode.id) == row.id, col(LinkCode.used_at).is_(None))
        .values(used_at=now, used_by_id=account_id)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkRefused("This link code was already used. Ask for a new one with `/gpt link`.")
    return row.account_id


async def join_accounts(session: AsyncSession, *, source_id: int, target_id: int) -> Joined:
    """Move everything of `source_id` to `target_id`, in the caller's transaction."""
    if source_id == target_id:
        raise LinkRefused("These identities already share one account.")
    identities = (await session.execute(
        update(Identity).where(col(Identity.account_id) == source_id).values(account_id=target_id)
    )).rowcount  # type: ignore[attr-defined]
    gpts = (await session.execute(
        update(Gpt).where(col(Gpt.creator_id) == source_id).values(creator_id=target_id)
    )).rowcount  # type: ignore[attr-defined]
    for model, column in ((Invocation, Invocation.account_id), (Conversation, Conversation.account_id),
                          (Report, Report.account_id)):
        await session.execute(update(model).where(col(column) == source_id).values({column.key: target_id}))  # type: ignore[attr-defined]
    touched = await _move_ratings(session, source_id, target_id)
    touched |= await _move_feedback(session, source_id, target_id)
    await _move_one(session, BuilderDraft, BuilderDraft.account_id, source_id, target_id)
    await _move_one(session, PayoutSettings, PayoutSettings.account_id, source_id, target_id)
    await session.execute(delete(LinkCode).where(col(LinkCode.account_id) == source_id, col(LinkCode.used_at).is_(None)))
    await session.execute(
        update(AccountMerge).where(col(AccountMerge.into_account_id) == source_id).values(into_account_id=target_id)
    )
    session.add(AccountMerge(from_account_id=source_id, into_account_id=target_id))
    await session.flush()
    await _recount(session, touched)
    await _move_other_tables(session, source_id, target_id)
    return Joined(source_id, target_id, int(gpts or 0), int(identities or 0))


async def _move_ratings(session: AsyncSession, source_id: int, target_id: int) -> set[int]:
    """Keep the survivor's rating where both rated a GPT; drop ratings of one's own GPTs."""
    theirs = list((await session.execute(select(Rating).where(Rating.account_id == source_id))).scalars())
    touched = {rating.gpt_id for rating in theirs}
    own = set((await session.execute(select(Rating.gpt_id).where(Rating.account_id == target_id))).scalars())
    for rating in theirs:
        if rating.gpt_id in own:
            await session.delete(rating)
        else:
            rating.account_id = target_id
    await session.flush()
    mine = select(Gpt.id).where(Gpt.creator_id == target_id)
    selfish = await session.execute(
        select(Rating.gpt_id).where(Rating.account_id == target_id, col(Rating.gpt_id).in_(mine))
    )
    touched |= set(selfish.scalars())
    await session.execute(delete(Rating).where(col(Rating.account_id) == target_id, col(Rating.gpt_id).in_(mine)))
    return touched


async def _move_feedback(session: AsyncSession, source_id: int, target_id: int) -> set[int]:
    theirs = list((await session.execute(select(Feedback).where(Feedback.account_id == source_id))).scalars())
    voted = set((await session.execute(
        select(Feedback.invocation_id).where(Feedback.account_id == target_id)
    )).scalars())
    for vote in theirs:
        if vote.invocation_id in voted:
            await session.delete(vote)
        else:
            vote.account_id = target_id
    await session.flush()
    return {vote.gpt_id for vote in theirs}


async def _move_one(session: AsyncSession, model: type[SQLModel], column: Any, source_id: int, target_id: int) -> None:
    """A one-per-account row: the survivor's wins, else the joined account's moves over."""
    kept = (await session.execute(select(func.count()).select_from(model).where(column == target_id))).scalar_one()
    if kept:
        await session.execute(delete(model).where(column == source_id))
    else:
        await session.execute(update(model).where(column == source_id).values({column.key: target_id}))


async def _recount(session: AsyncSession, gpt_ids: set[int]) -> None:
    """Ratings and thumbs of the GPTs whose votes moved, counted again from the votes."""
    for gpt_id in sorted(gpt_ids):
        total, count = (await session.execute(
            select(func.coalesce(func.sum(Rating.stars), 0), func.count()).where(Rating.gpt_id == gpt_id)
        )).one()
        up = (await session.execute(
            select(func.count()).select_from(Feedback).where(Feedback.gpt_id == gpt_id, Feedback.value > 0)
        )).scalar_one()
        down = (await session.execute(
            select(func.count()).select_from(Feedback).where(Feedback.gpt_id == gpt_id, Feedback.value < 0)
        )).scalar_one()
        await session.execute(update(Gpt).where(col(Gpt.id) == gpt_id).values(
            rating_sum=total, rating_count=count, thumbs_up=up, thumbs_down=down
        ))


_HANDLED = {
    "account", "identity", "gpt", "invocation", "conversation", "report", "rating", "feedback", "builderdraft",
    "payoutsettings", "linkcode", "accountmerge", "rewardstatement", "gptscore", "ledgerentry",
}


async def _move_other_tables(session: AsyncSession, source_id: int, target_id: int) -> None:
    """Tables added by other features that point at an account follow too, where nothing collides.

    History (statements, scores) stays with the joined account on purpose; a row that would break a
    unique rule stays where it is, and the log says so.
    """
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _HANDLED:
            continue
        for column in table.columns:
            if not any(fk.column.table.name == "account" for fk in column.foreign_keys):
                continue
            try:
                async with session.begin_nested():
                    await session.execute(update(table).where(column == source_id).values({column.name: target_id}))
            except IntegrityError:
                log.warning("account join: rows of %s.%s stay with account %d", table.name, column.name, source_id)
