"""Workspace curation (the tables, and the queries every path shares) and the catalogue filter.

Why the rules live in the database and are read on every request, with no process cache: a
block, an allowlist change or an operator takedown (store/operator.py) must hold on the very
next request on every replica. Each change is a single-statement update of one field (plus an audit row, in the same
transaction), so two admins changing one policy at once never lose each other's update; the
policy row also carries a `version` that every change increments.

The catalogue filter (`catalog_filter`) is SQL text, so that the full-text queries of
store/search.py and the ORM queries can both use it, and so that a page of results is filtered in
the database, not after the fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, UniqueConstraint, bindparam, column, func, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from store.db import detached, loaded
from store.gpts import GPT_KEYS, name_key, seen_by
from store.models import Gpt, GptVersion, Invocation, InvocationStatus, utcnow
from store.statements import Statements


class Mode(StrEnum):
    OPEN = "open"  # every public GPT except blocked ones
    ALLOWLIST = "allowlist"  # only the GPTs an admin allowed


class WorkspacePolicy(SQLModel, table=True):
    """One row per curated workspace; a workspace without a row is open with no limits."""

    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    mode: str = Field(default=Mode.OPEN, max_length=16)
    review_required: bool = False
    member_daily_quota: int | None = None
    workspace_daily_quota: int | None = None
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class WorkspaceGpt(SQLModel, table=True):
    """What one workspace decided about one GPT."""

    __table_args__ = (UniqueConstraint("workspace_id", "gpt_id", name="uq_workspacegpt"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    gpt_id: int = Field(foreign_key="gpt.id")
    allowed: bool = False
    blocked: bool = False
    featured: bool = False
    approved_version_id: int | None = Field(default=None, foreign_key="gptversion.id")
    requested_at: datetime | None = None  # a member wanted it while it waited for review
    updated_at: datetime = Field(default_factory=utcnow)


class ChannelRule(SQLModel, table=True):
    """A channel of a workspace: listed among those where GPTs answer, and/or its default GPT."""

    __table_args__ = (UniqueConstraint("workspace_id", "channel_ref", name="uq_channelrule"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    channel_ref: str = Field(max_length=64)
    answers: bool = False
    default_gpt_id: int | None = Field(default=None, foreign_key="gpt.id")


class AuditEntry(SQLModel, table=True):
    """Who changed what, when: admins' changes (with their workspace) and the operator's (without)."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id", index=True)
    actor_account_id: int | None = Field(default=None, foreign_key="account.id")
    actor_name: str = Field(max_length=100)
    action: str = Field(max_length=32)
    target: str = Field(default="", max_length=100)
    detail: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class LeakAttempt(SQLModel, table=True):
    """An answer withheld because it quoted its GPT's instructions (shown to the creator as a count)."""

    id: int | None = Field(default=None, primary_key=True)
    gpt_id: int = Field(foreign_key="gpt.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id")
    invocation_id: int | None = Field(default=None, foreign_key="invocation.id")
    created_at: datetime = Field(default_factory=utcnow)


class QuotaUsage(SQLModel, table=True):
    """Uses counted against a daily quota: scope is 'workspace' or 'member:<account id>'."""

    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    scope: str = Field(max_length=32, primary_key=True)
    day: date = Field(primary_key=True)
    used: int = 0


# --- reading a workspace's rules ---------------------------------------------------------------

async def get_policy(session: AsyncSession, workspace_id: int) -> WorkspacePolicy:
    """The stored policy, or the default (open, no review, no quotas) if none was ever set."""
    found = await session.get(WorkspacePolicy, workspace_id, populate_existing=True)
    return found or WorkspacePolicy(workspace_id=workspace_id)


async def get_entry(session: AsyncSession, workspace_id: int, gpt_id: int) -> WorkspaceGpt | None:
    rows = await session.execute(
        select(WorkspaceGpt).where(WorkspaceGpt.workspace_id == workspace_id, WorkspaceGpt.gpt_id == gpt_id)
    )
    return rows.scalar_one_or_none()


async def entries(session: AsyncSession, workspace_id: int) -> list[tuple[WorkspaceGpt, Gpt]]:
    rows = await session.execute(
        select(WorkspaceGpt, Gpt).join(Gpt, Gpt.id == WorkspaceGpt.gpt_id)  # type: ignore[arg-type]
        .where(WorkspaceGpt.workspace_id == workspace_id).order_by(Gpt.name)
    )
    return [(entry, gpt) for entry, gpt in rows.all()]


async def channel_rules(session: AsyncSession, workspace_id: int) -> list[ChannelRule]:
    rows = await session.execute(
        select(ChannelRule).where(ChannelRule.workspace_id == workspace_id).order_by(ChannelRule.channel_ref)
    )
    return list(rows.scalars())


async def answering_channels(session: AsyncSession, workspace_id: int) -> list[str]:
    """The channels GPTs are limited to; empty means every channel."""
    return [rule.channel_ref for rule in await channel_rules(session, workspace_id) if rule.answers]


async def channel_default(session: AsyncSession, workspace_id: int, channel_ref: str) -> int | None:
    rows = await session.execute(
        select(ChannelRule.default_gpt_id).where(
            ChannelRule.workspace_id == workspace_id, ChannelRule.channel_ref == channel_ref
        )
    )
    return rows.scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class Standing:
    """Everything the gate needs about one GPT in one place, read in one query (it runs on every use)."""

    creator_banned: bool
    ban_reason: str | None
    mode: str
    review_required: bool
    member_quota: int | None
    workspace_quota: int | None
    blocked: bool
    allowed: bool
    approved_number: int | None  # the version number an admin approved here, if any
    channels_limited: bool  # GPTs answer only in listed channels here
    channel_listed: bool  # and this channel is one of them


# The gate's reads, shared by `standing` (a GPT already found) and `find_with_standing` (the
# GPT a member named, found in the same statement): :ws, :ch, and the GPT as {gpt}.
_STANDING_COLUMNS = """a.banned_at IS NOT NULL, a.ban_reason, p.mode, p.review_required, p.member_daily_quota,
       p.workspace_daily_quota, e.blocked, e.allowed, av.number,
       EXISTS (SELECT 1 FROM channelrule AS c WHERE c.workspace_id = :ws AND c.answers),
       EXISTS (SELECT 1 FROM channelrule AS c WHERE c.workspace_id = :ws AND c.answers AND c.channel_ref = :ch)"""
_STANDING_JOINS = """LEFT JOIN workspacepolicy AS p ON p.workspace_id = :ws
    LEFT JOIN workspacegpt AS e ON e.workspace_id = :ws AND e.gpt_id = {gpt}
    LEFT JOIN gptversion AS av ON av.id = e.approved_version_id"""
_STANDING = text(f"SELECT {_STANDING_COLUMNS} FROM account AS a {_STANDING_JOINS.format(gpt=':gpt')} "
                 "WHERE a.id = :creator")
_GPT_COLUMNS = list(Gpt.__table__.columns)  # type: ignore[attr-defined]
_VERSION_COLUMNS = list(GptVersion.__table__.columns)  # type: ignore[attr-defined]
_FOUND_WITH_STANDING = text(
    f"SELECT {', '.join('gpt.' + c.name for c in _GPT_COLUMNS)}, {_STANDING_COLUMNS}, "
    f"{', '.join('cv.' + c.name for c in _VERSION_COLUMNS)}, a.display_name FROM gpt "
    f"JOIN account AS a ON a.id = gpt.creator_id {_STANDING_JOINS.format(gpt='gpt.id')} "
    "LEFT JOIN gptversion AS cv ON cv.id = gpt.current_version_id "
    "WHERE gpt.slug = :slug OR gpt.name_key = :key"
).columns(*(column(c.name, c.type) for c in _GPT_COLUMNS),  # typed like the ORM reads them
          *(column(f"standing{i}") for i in range(11)),
          *(column(c.name, c.type) for c in _VERSION_COLUMNS), column("creator_name"))


@dataclass(frozen=True, slots=True)
class Found:
    """A GPT a member named, its standing here, its current version and its creator's name."""

    gpt: Gpt
    standing: Standing
    version: GptVersion | None  # None before its first publication
    creator_name: str


def _where(workspace_id: int | None, channel_ref: str | None) -> dict[str, Any]:
    return {"ws": workspace_id if workspace_id is not None else -1, "ch": channel_ref or ""}


def _standing(row: Sequence[Any]) -> Standing:
    banned, reason, mode, review, member, server, blocked, allowed, approved, limited, listed = row
    return Standing(bool(banned), reason, mode or Mode.OPEN.value, bool(review), member, server, bool(blocked),
                    bool(allowed), approved, bool(limited), bool(listed))


async def standing(session: AsyncSession | Statements, gpt: Gpt, *, workspace_id: int | None, channel_ref: str | None) -> Standing:
    row = (await session.execute(_STANDING, {
        **_where(workspace_id, channel_ref), "gpt": gpt.id, "creator": gpt.creator_id,
    })).one()
    return _standing(row)


async def find_with_standing(
    statements: Statements, ref: str, *, viewer_id: int | None, workspace_id: int | None, channel_ref: str | None,
) -> Found | None:
    """`store.gpts.find_gpt_to_read`, `standing` and what an answer reads of the GPT
    (`store.gpts.for_answer`) in one statement: every ask names a GPT, passes the gate and is
    answered by its current version (on PostgreSQL two round trips less)."""
    ref = ref.strip()
    if not ref:
        return None
    rows = (await statements.execute(_FOUND_WITH_STANDING, {
        "slug": ref.lower(), "key": name_key(ref), **_where(workspace_id, channel_ref)})).all()
    gpt_end = len(_GPT_COLUMNS)
    version_start = gpt_end + 11
    found = [detached(Gpt, dict(zip(GPT_KEYS, row[:gpt_end], strict=True))) for row in rows]
    gpt = seen_by(found, ref, viewer_id)
    if gpt is None:
        return None
    row = next(row for row, one in zip(rows, found, strict=True) if one is gpt)
    version = None if row[version_start] is None else loaded(GptVersion, {
        c.key: value for c, value in zip(_VERSION_COLUMNS, row[version_start:-1], strict=True)})
    return Found(gpt, _standing(row[gpt_end:version_start]), version, row[-1])


# --- changing them (each a single-field update, audited in the same transaction) --------------

def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def insert_ignore(session: AsyncSession, model: type[SQLModel], keys: list[str], **values: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (the same words on SQLite and PostgreSQL)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table(model)).values(**values).on_conflict_do_nothing(index_elements=keys)


async def set_policy(session: AsyncSession, workspace_id: int, **values: Any) -> None:
    await session.execute(insert_ignore(
        session, WorkspacePolicy, ["workspace_id"], workspace_id=workspace_id, mode=Mode.OPEN.value,
        review_required=False, version=0, updated_at=utcnow(),
    ))
    await session.execute(
        update(WorkspacePolicy).where(WorkspacePolicy.workspace_id == workspace_id)  # type: ignore[arg-type]
        .values(**values, version=WorkspacePolicy.version + 1, updated_at=utcnow())
    )


async def set_entry(session: AsyncSession, workspace_id: int, gpt_id: int, **values: Any) -> None:
    await session.execute(insert_ignore(
        session, WorkspaceGpt, ["workspace_id", "gpt_id"], workspace_id=workspace_id, gpt_id=gpt_id,
        allowed=False, blocked=False, featured=False, updated_at=utcnow(),
    ))
    await session.execute(
        update(WorkspaceGpt)
        .where(WorkspaceGpt.workspace_id == workspace_id, WorkspaceGpt.gpt_id == gpt_id)  # type: ignore[arg-type]
        .values(**values, updated_at=utcnow())
    )


async def set_channel(session: AsyncSession, workspace_id: int, channel_ref: str, **values: Any) -> None:
    await session.execute(insert_ignore(
        session, ChannelRule, ["workspace_id", "channel_ref"], workspace_id=workspace_id,
        channel_ref=channel_ref, answers=False,
    ))
    await session.execute(
        update(ChannelRule)
        .where(ChannelRule.workspace_id == workspace_id, ChannelRule.channel_ref == channel_ref)  # type: ignore[arg-type]
        .values(**values)
    )


async def limit_channels(session: AsyncSession, workspace_id: int, channels: list[str]) -> None:
    """GPTs answer only in `channels` from now on (every channel when the list is empty)."""
    await session.execute(
        update(ChannelRule).where(ChannelRule.workspace_id == workspace_id).values(answers=False)  # type: ignore[arg-type]
    )
    for channel in channels:
        await set_channel(session, workspace_id, channel, answers=True)


async def mark_requested(session: AsyncSession, workspace_id: int, gpt_id: int) -> None:
    await set_entry(session, workspace_id, gpt_id, requested_at=utcnow())


def audit(
    session: AsyncSession, *, workspace_id: int | None, actor_id: int | None, actor_name: str, action: str,
    target: str = "", detail: str = "",
) -> None:
    session.add(AuditEntry(
        workspace_id=workspace_id, actor_account_id=actor_id, actor_name=actor_name[:100], action=action[:32],
        target=target[:100], detail=detail[:500],
    ))


async def audit_log(session: AsyncSession, workspace_id: int | None, *, limit: int = 20) -> list[AuditEntry]:
    query = select(AuditEntry).where(
        AuditEntry.workspace_id == workspace_id if workspace_id is not None else AuditEntry.workspace_id.is_(None)  # type: ignore[union-attr]
    )
    rows = await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))  # type: ignore[union-attr]
    return list(rows.scalars())


async def last_change(session: AsyncSession, workspace_id: int, *targets: str) -> AuditEntry | None:
    """The latest admin change about any of `targets` (a GPT's slug, or a setting's name)."""
    rows = await session.execute(
        select(AuditEntry)
        .where(AuditEntry.workspace_id == workspace_id, AuditEntry.target.in_(targets))  # type: ignore[attr-defined]
        .order_by(AuditEntry.id.desc()).limit(1)  # type: ignore[union-attr]
    )
    return rows.scalar_one_or_none()


# --- daily quotas ------------------------------------------------------------------------------

async def consume_quota(session: AsyncSession, workspace_id: int, scope: str, day: date, limit: int) -> bool:
    """Count one use if `limit` is not reached yet; atomic, so racing replicas never overshoot."""
    await session.execute(insert_ignore(
        session, QuotaUsage, ["workspace_id", "scope", "day"], workspace_id=workspace_id, scope=scope,
        day=day, used=0,
    ))
    result = await session.execute(
        update(QuotaUsage)
        .where(QuotaUsage.workspace_id == workspace_id, QuotaUsage.scope == scope, QuotaUsage.day == day,  # type: ignore[arg-type]
               QuotaUsage.used < limit)  # type: ignore[arg-type]
        .values(used=QuotaUsage.used + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def quota_used(session: AsyncSession, workspace_id: int, scope: str, day: date) -> int:
    row = await session.get(QuotaUsage, (workspace_id, scope, day))
    return row.used if row else 0


# --- the catalogue filter -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CatalogFilter:
    where: str  # a boolean SQL expression on the GPT table, aliased `g`
    featured: str  # an ORDER BY expression: 0 for GPTs this workspace features, 1 otherwise
    params: dict[str, Any]
    workspace_id: int | None = None  # the workspace whose rules these are (its id is also :pol_ws)


_LISTING_RULES = select(WorkspacePolicy.mode, WorkspacePolicy.review_required).where(
    col(WorkspacePolicy.workspace_id) == bindparam("workspace_id"))


async def catalog_filter(session: AsyncSession, workspace_id: int | None) -> CatalogFilter:
    """What a listing may show: nothing taken down or by a banned creator; in a workspace, nothing
    blocked, only allowed GPTs in allowlist mode, only approved current versions under review."""
    g = "g"  # the alias of the GPT table in the statements that use the filter
    parts = [
        f"{g}.taken_down_at IS NULL",
        f"NOT EXISTS (SELECT 1 FROM account AS pban WHERE pban.id = {g}.creator_id AND pban.banned_at IS NOT NULL)",
    ]
    if workspace_id is None:  # an expression, not a bare `1` (ORDER BY 1 would mean "the first column")
        return CatalogFilter(" AND ".join(parts), f"(CASE WHEN {g}.id IS NULL THEN 0 ELSE 1 END)", {})
    # two columns, not the policy object (`get_policy`): every listing and keystroke reads them
    row = (await session.execute(_LISTING_RULES, {"workspace_id": workspace_id})).first()
    mode, review_required = row if row is not None else (Mode.OPEN, False)
    entry = f"SELECT 1 FROM workspacegpt AS {{a}} WHERE {{a}}.workspace_id = :pol_ws AND {{a}}.gpt_id = {g}.id"
    parts.append(f"NOT EXISTS ({entry.format(a='pblk')} AND pblk.blocked)")
    if mode == Mode.ALLOWLIST:
        parts.append(f"EXISTS ({entry.format(a='pall')} AND pall.allowed)")
    if review_required:
        parts.append(f"EXISTS ({entry.format(a='prev')} AND prev.approved_version_id = {g}.current_version_id)")
    featured = f"(CASE WHEN EXISTS ({entry.format(a='pfea')} AND pfea.featured) THEN 0 ELSE 1 END)"
    return CatalogFilter(" AND ".join(parts), featured, {"pol_ws": workspace_id}, workspace_id)


async def admissible(
    session: AsyncSession, gpt_ids: list[int], *, workspace_id: int | None
) -> dict[int, bool]:
    """Of these public GPTs, those a listing may show here, each with whether it is featured."""
    if not gpt_ids:
        return {}
    f = await catalog_filter(session, workspace_id)
    sql = text(
        f"SELECT g.id, {f.featured} FROM gpt AS g WHERE g.id IN :ids AND g.status = 'published' "
        f"AND g.visibility = 'public' AND {f.where}"
    ).bindparams(bindparam("ids", expanding=True))
    rows = await session.execute(sql, {"ids": list(gpt_ids), **f.params})
    return {gpt_id: rank == 0 for gpt_id, rank in rows.all()}


async def featured_ids(session: AsyncSession, workspace_id: int) -> list[int]:
    rows = await session.execute(
        select(WorkspaceGpt.gpt_id).where(WorkspaceGpt.workspace_id == workspace_id, WorkspaceGpt.featured)
    )
    return list(rows.scalars())


# --- leaks, takedowns, bans, reports -----------------------------------------------------------

async def record_leak(
    session: AsyncSession, *, gpt_id: int, account_id: int, workspace_id: int | None, invocation_id: int | None
) -> None:
    session.add(LeakAttempt(gpt_id=gpt_id, account_id=account_id, workspace_id=workspace_id,
                            invocation_id=invocation_id))
    if invocation_id is not None:
        await mark_blocked(session, invocation_id, "leak_guard")


async def mark_blocked(session: AsyncSession, invocation_id: int, code: str) -> None:
    """A use that must earn nothing: its answer was withheld, or its GPT was taken down meanwhile."""
    await session.execute(
        update(Invocation).where(Invocation.id == invocation_id)  # type: ignore[arg-type]
        .values(status=InvocationStatus.BLOCKED, error_code=code[:32], finished_at=utcnow())
    )


async def leak_counts(session: AsyncSession, gpt_ids: list[int]) -> dict[int, int]:
    if not gpt_ids:
        return {}
    rows = await session.execute(
        select(LeakAttempt.gpt_id, func.count()).where(LeakAttempt.gpt_id.in_(gpt_ids))  # type: ignore[attr-defined]
        .group_by(col(LeakAttempt.gpt_id))
    )
    return {gpt_id: count for gpt_id, count in rows.all()}
