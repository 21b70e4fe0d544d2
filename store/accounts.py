"""Accounts, platform identities and workspaces: found or created on first sight."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.db import detached
from store.models import Account, Identity, Workspace
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
_WORKSPACE_NAME = [c.key for c in _WORKSPACE_COLUMNS].index("name")
_KNOWN_ACTOR = _actor(*_ACCOUNT_COLUMNS, *_WORKSPACE_COLUMNS)


async def known_actor(
    statements: Statements, *, platform: str, user_id: str, display_name: str, locale: str,
    workspace_id: str | None, workspace_name: str = "",
) -> tuple[Account, Workspace | None] | None:
    """What `resolve_actor` finds, when it would find everything and change nothing: one statement
    through the driver, the rows made into objects without the ORM (every event pays for this
    lookup). None when something must be created or updated: then `resolve_actor` does it."""
    row = (await statements.execute(_KNOWN_ACTOR, {
        "platform": platform, "user_id": user_id, "workspace": workspace_id})).first()
    if row is None:
        return None
    split = len(_ACCOUNT_COLUMNS)
    values = dict(zip((c.key for c in _ACCOUNT_COLUMNS), row[:split], strict=True))
    if display_name and (values["display_name"] != display_name[:100] or (locale and values["locale"] != locale)):
        return None  # renamed, or a new language: `_refresh` writes it
    workspace = None
    if workspace_id:
        if row[split] is None or (workspace_name and row[split + _WORKSPACE_NAME] != workspace_name[:100]):
            return None  # a new workspace, or renamed
        workspace = detached(Workspace, dict(zip((c.key for c in _WORKSPACE_COLUMNS), row[split:], strict=True)))
    return detached(Account, values), workspace


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
