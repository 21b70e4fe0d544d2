"""Bolt's installation and OAuth-state stores, backed by our database (SQLite or PostgreSQL).

slack_sdk ships file, S3 and *synchronous* SQLAlchemy stores; a multi-replica deployment needs the
installations where every replica sees them, through the async engine the rest of the bot uses.
The rows live in `store.slack_installations`; this module only converts slack_sdk's objects to and
from the plain dicts saved there (the same `__dict__` round trip slack_sdk's own stores use).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from store import slack_installations as rows
from store.db import Database
from store.sealing import Sealer

log = logging.getLogger(__name__)

_BOT_FIELDS = (
    "bot_id", "bot_user_id", "bot_token", "bot_scopes", "bot_refresh_token", "bot_token_expires_at",
)


def _team(team_id: str | None, is_enterprise_install: bool | None) -> str | None:
    """An org-wide (Enterprise Grid) install is saved without a team; look it up the same way."""
    return None if is_enterprise_install else team_id


class DatabaseInstallationStore(AsyncInstallationStore):
    def __init__(self, db: Database, *, client_id: str, sealer: Sealer) -> None:
        self.db = db
        self.client_id = client_id
        self.sealer = sealer

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        team = _team(installation.team_id, installation.is_enterprise_install)
        async with self.db.session() as session:
            await rows.save(
                session, client_id=self.client_id, kind=rows.INSTALLATION, enterprise_id=installation.enterprise_id,
                team_id=team, user_id=installation.user_id, data=dict(installation.__dict__), sealer=self.sealer,
            )
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        if bot.bot_token is None:
            return
        team = _team(bot.team_id, bot.is_enterprise_install)
        async with self.db.session() as session:
            await rows.save(
                session, client_id=self.client_id, kind=rows.BOT, enterprise_id=bot.enterprise_id, team_id=team,
                user_id=None, data=dict(bot.__dict__), sealer=self.sealer,
            )

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        async with self.db.reader() as session:
            data = await rows.latest(
                session, client_id=self.client_id, kind=rows.BOT, enterprise_id=enterprise_id,
                team_id=_team(team_id, is_enterprise_install), sealer=self.sealer,
            )
        return Bot(**data) if data else None

    async def async_find_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        team = _team(team_id, is_enterprise_install)
        async with self.db.reader() as session:
            data = await rows.latest(
                session, client_id=self.client_id, kind=rows.INSTALLATION, enterprise_id=enterprise_id,
                team_id=team, user_id=user_id, sealer=self.sealer,
            )
            if data is None:
                return None
            if user_id is not None or data.get("bot_token") is None:
                # a user's own (older) installation carries the bot token of its day: use the latest one
                bot = await rows.latest(
                    session, client_id=self.client_id, kind=rows.BOT, enterprise_id=enterprise_id, team_id=team,
                    sealer=self.sealer,
                )
                if bot is not None:
                    data.update({name: bot.get(name) for name in _BOT_FIELDS})
        return Installation(**data)

    async def teams(self) -> list[tuple[str | None, str | None]]:
        """(enterprise_id, team_id) of every installed workspace or org, newest install first."""
        async with self.db.reader() as session:
            return await rows.installed_teams(session, client_id=self.client_id)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.db.session() as session:
            await rows.remove(session, client_id=self.client_id, kind=rows.BOT, enterprise_id=enterprise_id,
                              team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
    ) -> None:
        async with self.db.session() as session:
            await rows.remove(session, client_id=self.client_id, kind=rows.INSTALLATION,
                              enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)


class DatabaseOAuthStateStore(AsyncOAuthStateStore):
    """One-time OAuth states: any replica can check a state another replica issued."""

    def __init__(self, db: Database, *, expiration_seconds: int = 600) -> None:
        self.db = db
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            await rows.issue_state(session, state=state, ttl_seconds=self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state or len(state) > 64:
            return False
        async with self.db.session() as session:
            return await rows.consume_state(session, state=state)
