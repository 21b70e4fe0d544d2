"""Accounts, platform identities and workspaces: found or created on first sight.

`known_actor` also records the event's delivery (`SEEN`), because on PostgreSQL it does so in the
same statement as the lookup every event takes first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, bindparam, func, literal_column, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.db import detached, typed_sql
from store.models import Account, Identity, SeenEvent, Workspace, utcnow
from store.statements import Statements


async def resolve_account(
    session: AsyncSession, *, platform: str, user_id: str, display_name: str, locale: str
) -> Account:
    """The account behind a platform user id; the first event from a person creates it."""
    row = (
        await session.execute(
            select(Account, Identity)
            .join(Identity, Identity.account_id == Account.id)  # type: ignore[arg-type]
            .where(Identity.platform == platform, Identity.external_id == user_id)
        )
    ).first()
    if row is not None:
        account, identity = row
        _refresh(account, identity, display_name, locale)
        return account
    try:
        async with session.begin_nested():
            account = Account(display_name=(display_name or user_id)[:100], locale=locale or "en")
            session.add(account)
            await session.flush()
            assert account.id is not None
            session.add(
                Identity(
                    platform=platform, external_id=user_id, account_id=account.id, display_name=display_name[:100]
                )
            )
            await session.flush()
        return account
    except IntegrityError:  # another delivery created it first
        found = (
            await session.execute(
                select(Account)
                .join(Identity, Identity.account_id == Account.id)  # type: ignore[arg-type]
                .where(Identity.platform == platform, Identity.external_id == user_id)
            )
        ).scalar_one()
        return found


_VIEWER_HERE = select(  # type: ignore[call-overload]
    select(Identity.account_id).where(Identity.platform == bindparam("platform"),
                                      Identity.external_id == bindparam("user_id")).scalar_subquery(),
    select(Workspace.id).where(Workspace.platform == bindparam("platform"),
                               Workspace.external_id == bindparam("workspace")).scalar_subquery(),
)


async def viewer_here(
    session: AsyncSession, *, platform: str, user_id: str, workspace_id: str | None,
) -> tuple[int | None, int | None]:
    """The account behind a platform user id, if that person was ever seen, and the id of the
    workspace, if known: one statement, nothing written. Autocomplete runs at every keystroke, and
    someone new sees what anyone may see."""
    row = (await session.execute(_VIEWER_HERE, {"platform": platform, "user_id": user_id,
                                                "workspace": workspace_id})).one()
    return row[0], row[1]


def _refresh(account: Account, identity: Identity, display_name: str, locale: str) -> None:
    if display_name and (account.display_name != display_name[:100] or (locale and account.locale != locale)):
        account.display_name = display_name[:100]
        account.locale = locale or account.locale  # "": the platform did not say; keep the last known
        identity.display_name = display_name[:100]


def _actor(*what: Any) -> Any:
    """The account of a platform user and the workspace of the event (if known), in one query."""
    return (
        select(*what)
        .join_from(Account, Identity, Identity.account_id == Account.id)  # type: ignore[arg-type]
        .outerjoin(Workspace, and_(col(Workspace.platform) == bindparam("platform"),
                                   col(Workspace.external_id) == bindparam("workspace")))
        .where(Identity.platform == bindparam("platform"), Identity.external_id == bindparam("user_id"))
    )


_ACTOR = _actor(Account, Identity, Workspace)


async def resolve_actor(
    session: AsyncSession, *, platform: str, user_id: str, display_name: str, locale: str,
    workspace_id: str | None, workspace_name: str = "",
) -> tuple[Account, Workspace | None]:
    """`resolve_account` and `ensure_workspace` for one event, in one statement when both exist
    (every event pays for this lookup)."""
    row = (await session.execute(_ACTOR, {"platform": platform, "user_id": user_id, "workspace": workspace_id})).first()
    if row is None:
        account = await resolve_account(session, platform=platform, user_id=user_id, display_name=display_name,
                                        locale=locale)
        workspace = None
    else:
        account, identity, workspace = row
        _refresh(account, identity, display_name, locale)
    if workspace is None:
        workspace = await ensure_workspace(session, platform=platform, external_id=workspace_id, name=workspace_name)
    elif workspace_name and workspace.name != workspace_name[:100]:
        workspace.name = workspace_name[:100]
    return account, workspace


_ACCOUNT_COLUMNS = list(Account.__table__.columns)  # type: ignore[attr-defined]
_WORKSPACE_COLUMNS = list(Workspace.__table__.columns)  # type: ignore[attr-defined]
_NAME, _LOCALE = bindparam("name", type_=String), bindparam("check_locale", type_=String)
_PLACE, _PLACE_NAME = bindparam("workspace", type_=String), bindparam("workspace_name", type_=String)
# True when `resolve_actor` would find everything and change nothing: the same rule as `_refresh`
# and `resolve_actor`'s, written in SQL so that PostgreSQL can decide on the delivery's record in
# the same statement (a parameter is NULL where the platform did not say).
_UNCHANGED = and_(
    or_(_NAME.is_(None), and_(col(Account.display_name) == _NAME,
                              or_(_LOCALE.is_(None), col(Account.locale) == _LOCALE))),
    or_(_PLACE.is_(None), and_(col(Workspace.id).is_not(None),
                               or_(_PLACE_NAME.is_(None), col(Workspace.name) == _PLACE_NAME))),
).label("unchanged")
_KNOWN_ACTOR = _actor(*_ACCOUNT_COLUMNS, *_WORKSPACE_COLUMNS, _UNCHANGED)
_SPLIT = len(_ACCOUNT_COLUMNS)
_UNCHANGED_AT = _SPLIT + len(_WORKSPACE_COLUMNS)
SEEN = typed_sql("INSERT INTO seenevent (key, created_at) VALUES (:key, :created_at) ON CONFLICT (key) DO NOTHING",
                 SeenEvent)


def _known_and_seen() -> Any:
    """PostgreSQL: `_KNOWN_ACTOR` and, when it finds everything unchanged, the delivery recorded,
    in one statement (a data-modifying WITH) that commits on its own: one round trip for what
    every event needs first. `first` counts the rows the record wrote (0: seen before)."""
    who = _KNOWN_ACTOR.cte("who")
    when = SeenEvent.__table__.c.created_at.type  # type: ignore[attr-defined]
    seen = (
        pg_insert(SeenEvent)
        .from_select(["key", "created_at"], select(  # type: ignore[call-overload]
            bindparam("key", type_=String), bindparam("created_at", type_=when),
        ).where(select(who.c.unchanged).scalar_subquery()))
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(literal_column("1"))
        .cte("seen")
    )
    return select(who, select(func.count()).select_from(seen).scalar_subquery().label("first"))  # type: ignore[call-overload]


_KNOWN_AND_SEEN = _known_and_seen()


@dataclass(frozen=True, slots=True)
class Known:
    account: Account
    workspace: Workspace | None
    first: bool  # the delivery was recorded now (False: a retry, or another replica has it)


async def known_actor(
    statements: Statements, *, platform: str, user_id: str, display_name: str, locale: str,
    workspace_id: str | None, workspace_name: str = "", delivery: str | None = None,
) -> Known | None:
    """What `resolve_actor` finds, when it would find everything and change nothing, with the
    delivery `delivery` recorded (`store.models.SeenEvent`; None: nothing to record): the rows made
    into objects without the ORM, every event pays for this. On PostgreSQL one statement (one round
    trip, bench/overhead.py), on SQLite two. None when something must be created or updated: then
    `resolve_actor` does it, and nothing of this delivery was recorded."""
    values: dict[str, Any] = {
        "platform": platform, "user_id": user_id, "workspace": workspace_id or None, "name": display_name[:100] or None,
        "check_locale": locale or None, "workspace_name": workspace_name[:100] or None,
    }
    together = delivery is not None and not statements.is_sqlite
    if together:
        values.update(key=delivery, created_at=utcnow())
    row = (await statements.execute(_KNOWN_AND_SEEN if together else _KNOWN_ACTOR, values)).first()
    if row is None or not row[_UNCHANGED_AT]:
        return None
    if together:
        first = bool(row[-1])
    elif delivery is not None:
        first = bool((await statements.execute(SEEN, {"key": delivery, "created_at": utcnow()})).rowcount)
    else:
        first = True
    account = detached(Account, dict(zip((c.key for c in _ACCOUNT_COLUMNS), row[:_SPLIT], strict=True)))
    workspace = None
    if workspace_id:
        workspace = detached(Workspace, dict(zip((c.key for c in _WORKSPACE_COLUMNS), row[_SPLIT:_UNCHANGED_AT],
                                                 strict=True)))
    return Known(account, workspace, first)


async def ensure_workspace(
    session: AsyncSession, *, platform: str, external_id: str | None, name: str = ""
) -> Workspace | None:
    if not external_id:
        return None
    workspace = (
        await session.execute(
            select(Workspace).where(Workspace.platform == platform, Workspace.external_id == external_id)
        )
    ).scalar_one_or_none()
    if workspace is not None:
        if name and workspace.name != name[:100]:
            workspace.name = name[:100]
        return workspace
    try:
        async with session.begin_nested():
            workspace = Workspace(platform=platform, external_id=external_id, name=name[:100])
            session.add(workspace)
            await session.flush()
        return workspace
    except IntegrityError:
        return (
            await session.execute(
                select(Workspace).where(Workspace.platform == platform, Workspace.external_id == external_id)
            )
        ).scalar_one()


async def creator_names(session: AsyncSession, account_ids: set[int]) -> dict[int, str]:
    if not account_ids:
        return {}
    rows = await session.execute(
        select(Account.id, Account.display_name).where(Account.id.in_(account_ids))  # type: ignore[union-attr]
    )
    return {account_id: name for account_id, name in rows.all()}


async def set_workspace_active(
    session: AsyncSession, *, platform: str, external_id: str, name: str = "", active: bool
) -> Workspace:
    """The bot joined (active) or left (retired) a workspace; the row is kept, so a return resumes it."""
    workspace = await ensure_workspace(session, platform=platform, external_id=external_id, name=name)
    assert workspace is not None
    if workspace.active != active:
        workspace.active = active
        session.add(workspace)
    return workspace
