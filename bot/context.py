"""What a command handler gets: the services, the event, who and where, and a way to answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.events import Action, Actor, Command, Event, Message, Place
from bot.replies import Outbox, Reply, Sent
from store.models import Account, Workspace
from store.sealing import Sealer, sealer_for

if TYPE_CHECKING:
    from bot.i18n import Translator
    from bot.llm import LLMGateway
    from config import Settings
    from store.db import Database


@dataclass
class Services:
    """Everything built once by `bootstrap()`; handlers reach it through their `Ctx`."""

    settings: Settings
    db: Database
    llm: LLMGateway
    tr: Translator
    extras: dict[str, Any] = field(default_factory=dict)
    cutting: asyncio.Event = field(default_factory=asyncio.Event)  # set at shutdown: streams end now

    @property
    def sealer(self) -> Sealer:
        """Seals secrets stored in the database; raises SealingUnavailable with what to set."""
        if "sealer" not in self.extras:
            key = self.settings.secret_key.get_secret_value() if self.settings.secret_key else None
            self.extras["sealer"] = sealer_for(self.settings.database_url, key)
        return self.extras["sealer"]


@dataclass
class Ctx:
    services: Services
    event: Event
    out: Outbox
    account: Account
    workspace: Workspace | None
    locale: str
    dm_notice_sent: bool = False
    memo: dict[str, Any] = field(default_factory=dict)  # this request only (e.g. a policy check it passed)

    @property
    def actor(self) -> Actor:
        return self.event.actor

    @property
    def place(self) -> Place:
        return self.event.place

    @property
    def account_id(self) -> int:
        assert self.account.id is not None
        return self.account.id

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def event_key(self) -> str:
        return f"{self.actor.platform}:{self.event.event_id}"

    def _(self, msgid: str, /, **params: Any) -> str:
        return self.services.tr(self.locale, msgid, **params)

    async def send(self, reply: Reply) -> Sent:
        return await self.out.send(reply)

    async def say(self, msgid: str, /, *, ephemeral: bool = True, **params: Any) -> Sent:
        return await self.out.send(Reply(text=self._(msgid, **params), ephemeral=ephemeral))

    @property
    def text(self) -> str:
        if isinstance(self.event, Message):
            return self.event.text
        return ""

    def option(self, name: str, default: Any = None) -> Any:
        if isinstance(self.event, Command):
            return self.event.options.get(name, default)
        return default

    @property
    def action(self) -> Action | None:
        return self.event if isinstance(self.event, Action) else None
