"""Slack app installations and OAuth states, kept in our own database.

Why here and not in files: with multi-workspace distribution every replica must find the bot token
of any workspace, and an OAuth `state` issued by one replica may come back to another. The rows are
plain data (the installation as Slack's SDK serialises it, plus the keys we look it up by); the
adapter converts them to and from slack_sdk objects, so the store never imports Slack.

Installations are append-only (a reinstall adds a row and the newest row wins), like slack_sdk's own
SQL store: no upsert race between replicas, and the history explains what a workspace granted when.
An OAuth state is consumed by deleting its row: whichever replica deletes it first wins, exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Index, delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, select

from store.models import utcnow
from store.sealing import Sealer

BOT = "bot"
INSTALLATION = "installation"


class SlackInstallation(SQLModel, table=True):
    """One saved installation (`kind="installation"`) or bot (`kind="bot"`) of the Slack app."""

    __tablename__ = "slack_installation"
    __table_args__ = (
        Index("ix_slack_installation_lookup", "client_id", "kind", "enterprise_id", "team_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    enterprise_id: str | None = Field(default=None, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    user_id: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    installed_at: datetime = Field(default_factory=utcnow)


class SlackOAuthState(SQLModel, table=True):
    """An OAuth `state` handed to a browser; valid once, until `expires_at`."""

    __tablename__ = "slack_oauth_state"
    state: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


async def save(
    session: AsyncSession, *, client_id: str, kind: str, enterprise_id: str | None, team_id: str | None,
    user_id: str | None, data: dict[str, Any], sealer: Sealer,
) -> None:
    """Tokens and secrets in `data` are sealed before they are written; never stored in clear."""
    session.add(SlackInstallation(
        client_id=client_id, kind=kind, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
        data=sealer.seal_fields(data),
    ))


async def latest(
    session: AsyncSession, *, client_id: str, kind: str, enterprise_id: str | None, team_id: str | None,
    sealer: Sealer, user_id: str | None = None,
) -> dict[str, Any] | None:
    """The newest saved row for these keys (any user when `user_id` is None), as saved."""
    query = select(SlackInstallation.data).where(
        SlackInstallation.client_id == client_id,
        SlackInstallation.kind == kind,
        _same(SlackInstallation.enterprise_id, enterprise_id),
        _same(SlackInstallation.team_id, team_id),
    )
    if user_id is not None:
        query = query.where(SlackInstallation.user_id == user_id)
    row = (await session.execute(query.order_by(SlackInstallation.id.desc()).limit(1))).first()  # type: ignore[union-attr]
    return sealer.open_fields(row[0]) if row is not None else None


async def installed_teams(session: AsyncSession, *, client_id: str) -> list[tuple[str | None, str | None]]:
    """(enterprise_id, team_id) of every workspace (or org-wide install: no team) with a saved bot,
    the most recently installed first."""
    newest = func.max(SlackInstallation.id)
    rows = await session.execute(
        select(SlackInstallation.enterprise_id, SlackInstallation.team_id, newest)
        .where(SlackInstallation.client_id == client_id, SlackInstallation.kind == BOT)
        .group_by(SlackInstallation.enterprise_id, SlackInstallation.team_id)  # type: ignore[arg-type]
        .order_by(newest.desc())
    )
    return [(enterprise_id, team_id) for enterprise_id, team_id, _ in rows.all()]


async def remove(
    session: AsyncSession, *, client_id: str, kind: str, enterprise_id: str | None, team_id: str | None,
    user_id: str | None = None,
) -> int:
    statement = delete(SlackInstallation).where(
        SlackInstallation.client_id == client_id,  # type: ignore[arg-type]
        SlackInstallation.kind == kind,  # type: ignore[arg-type]
        _same(SlackInstallation.enterprise_id, enterprise_id),
        _same(SlackInstallation.team_id, team_id),
    )
    if user_id is not None:
        statement = statement.where(SlackInstallation.user_id == user_id)  # type: ignore[arg-type]
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def issue_state(session: AsyncSession, *, state: str, ttl_seconds: int) -> None:
    now = utcnow()
    await session.execute(delete(SlackOAuthState).where(SlackOAuthState.expires_at < now))  # type: ignore[arg-type]
    session.add(SlackOAuthState(state=state, expires_at=now + timedelta(seconds=ttl_seconds)))


async def consume_state(session: AsyncSession, *, state: str) -> bool:
    """True once for a state that was issued and has not expired; False ever after."""
    result = await session.execute(
        delete(SlackOAuthState).where(
            SlackOAuthState.state == state, SlackOAuthState.expires_at >= utcnow()  # type: ignore[arg-type]
        )
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]
