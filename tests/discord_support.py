"""A Discord server on the fake Discord, with the real adapter (discord.py) connected to the real core.

`World` is what the Discord tests drive: a guild with #general, alice (a creator), bob (a member),
carol (an admin: a role with Manage Server) and the owner; helpers send slash commands, press
buttons, submit modals and write messages as those people would, and read what they would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from bot.adapters.discord import DiscordAdapter
from bot.bootstrap import App
from store.accounts import resolve_account
from store.gpts import GptFields, create_gpt
from tests.fakes.discord_fake import FakeDiscord, InteractionHandle

TOKEN = "fake-bot-token"
GUILD = 1000 << 22
OTHER_GUILD = 1001 << 22
GENERAL = 900000000000000001
OWNER = 800000000000000001
ALICE = 800000000000000002
BOB = 800000000000000003
CAROL = 800000000000000004
ADMIN_ROLE = 700000000000000001
MANAGE_GUILD = 1 << 5
LOADING = 1 << 7
EPHEMERAL = 1 << 6


class Adapter(DiscordAdapter):
    """The adapter as tests run it: Discord's 5 s pause between two shards' IDENTIFY is skipped (the
    fake has no identify rate limit). Everything else is the production class."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class World:
    def __init__(self, fake: FakeDiscord, app: App) -> None:
        self.fake = fake
        self.app = app
        self.client: DiscordAdapter | None = None
        self._task: asyncio.Task[None] | None = None

    # --- the bot ----------------------------------------------------------------------------------
    async def start(self, app: App | None = None, *, shards: int | None = None, **options: Any) -> DiscordAdapter:
        options.setdefault("guild_ready_timeout", 0.05)
        client = Adapter(app or self.app, **options)
        task = asyncio.create_task(client.start(TOKEN))
        ready = asyncio.create_task(self.fake.wait_ready(shards=shards))
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()
        await ready
        await asyncio.wait_for(client.wait_until_ready(), 5)
        self.client, self._task = client, task
        return client

    async def stop(self) -> None:
        if self.client is not None and self._task is not None:
            await self.client.close()
            await asyncio.wait_for(self._task, 10)
        self.client, self._task = None, None

    # --- people doing things ----------------------------------------------------------------------
    async def command(self, user: int, name: str, *, group: str = "gpt", channel: int = GENERAL,
                      locale: str | None = None, **options: Any) -> InteractionHandle:
        guild = self.fake._guild_of_channel(channel)
        payload = self.fake.slash_command(guild_id=guild, channel_id=channel, user_id=user, name=group,
                                          subcommand=name, options=options, locale=locale)
        return await self.fake.interact(payload)

    async def autocomplete(self, user: int, name: str, option: str, value: str, *, group: str = "gpt",
                           channel: int = GENERAL) -> list[dict[str, Any]]:
        payload = self.fake.autocomplete(guild_id=self.fake._guild_of_channel(channel), channel_id=channel,
                                         user_id=user, name=group, subcommand=name, focused=option, value=value)
        handle = await self.fake.interact(payload)
        return list((await handle.response())["data"]["choices"])

    async def press(self, user: int, message: dict[str, Any], label: str | None = None, *,
                    custom_id: str | None = None, value: str | None = None) -> InteractionHandle:
        """Press the button with this label (or pick `value` in the select with this placeholder)."""
        component = find_component(message, label=label, custom_id=custom_id)
        kind = component["type"]
        payload = self.fake.component(
            custom_id=component["custom_id"], message=message, user_id=user, component_type=kind,
            values=[value] if value is not None else None,
        )
        return await self.fake.interact(payload)

    async def submit(self, user: int, modal: dict[str, Any], channel: int, fields: dict[str, str],
                     message: dict[str, Any] | None = None) -> InteractionHandle:
        payload = self.fake.modal_submit(custom_id=modal["custom_id"], fields=fields, user_id=user,
                                         channel_id=channel, message=message)
        return await self.fake.interact(payload)

    def dm_channel(self, user: int) -> int:
        return int(self.fake.dm_channel(user)["id"])

    async def write(self, user: int, channel: int, text: str, **kw: Any) -> dict[str, Any]:
        return await self.fake.send_message(channel_id=channel, author_id=user, content=text, **kw)

    # --- what people see --------------------------------------------------------------------------
    def bot_messages(self, channel: int) -> list[dict[str, Any]]:
        me = str(self.fake.application_id)
        return [m for m in self.fake.message_objects(channel) if m["author"]["id"] == me]

    async def bot_says(self, channel: int, needle: str, *, after: int = 0, within: float = 10.0,
                       done: bool = True) -> dict[str, Any]:
        """The first bot message in `channel` (from the `after`-th on) whose text or embeds contain
        `needle`, once it is no longer "thinking…" (and, with `done`, its answer finished: it has
        its buttons, or it is not an answer still streaming)."""

        def match() -> dict[str, Any] | None:
            for message in self.bot_messages(channel)[after:]:
                if message["flags"] & LOADING or needle not in visible_text(message):
                    continue
                if done and message["content"].endswith("…"):
                    continue
                return message
            return None

        return await self.fake.wait_until(match, within)

    async def wait(self, predicate: Callable[[], Any], within: float = 10.0) -> Any:
        return await self.fake.wait_until(predicate, within)

    async def settled(self, within: float = 10.0) -> None:
        """Until the core has finished every event it was given (and the adapter its last calls)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        quiet = 0
        while quiet < 3:  # three looks in a row with nothing in flight
            busy = self.app.core._inflight or (self.client is not None and self.client.in_flight)
            quiet = 0 if busy else quiet + 1
            if loop.time() > deadline:
                raise TimeoutError("the core is still busy")
            await asyncio.sleep(0.02)

    async def replies(self, handle: InteractionHandle) -> str:
        """Everything the person who used the command or button saw in answer, once the core is done."""
        await handle.response(timeout=10)
        await self.settled()
        return "\n".join(visible_text(m) for m in handle.messages)


async def seed_gpt(app: App, creator: int, creator_name: str, name: str, *, category: str = "Education",
                   visibility: str = "public", starters: tuple[str, ...] = ()) -> str:
    """A published GPT, straight into the store (what the builder would have made); its slug."""
    async with app.db.session() as session:
        account = await resolve_account(session, platform="discord", user_id=str(creator),
                                        display_name=creator_name, locale="en")
        gpt, _ = await create_gpt(session, creator_id=account.id or 0, fields=GptFields(
            name=name, description=f"{name} helps with homework.", instructions=f"You are {name}.",
            starters=starters, category=category, model="gpt-4o-mini", visibility=visibility,
        ))
    return gpt.slug


def visible_text(message: dict[str, Any]) -> str:
    """What a person reads in a message: its text, and its embeds' titles, descriptions, fields, footers."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


def components(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components") or [] for c in row.get("components", [])]


def labels(message: dict[str, Any]) -> list[str]:
    return [c.get("label") or c.get("placeholder") or "" for c in components(message)]


def find_component(message: dict[str, Any], *, label: str | None = None, custom_id: str | None = None) -> dict[str, Any]:
    for component in components(message):
        if custom_id is not None and component.get("custom_id") == custom_id:
            return component
        if label is not None and label in (component.get("label"), component.get("placeholder")):
            return component
    raise AssertionError(f"no component {label or custom_id!r} in {labels(message)}")


async def world_for(app: App, **fake_options: Any) -> AsyncIterator[World]:
    async with FakeDiscord(token=TOKEN, **fake_options) as fake:
        fake.add_user(OWNER, "Owner")
        fake.add_user(ALICE, "Alice")
        fake.add_user(BOB, "Bob")
        fake.add_user(CAROL, "Carol")
        fake.add_guild(
            GUILD, "Math Club", owner_id=OWNER, channels=[{"id": GENERAL, "name": "general"}],
            roles=[{"id": ADMIN_ROLE, "name": "Mods", "permissions": MANAGE_GUILD}],
            members=[{"id": ALICE}, {"id": BOB}, {"id": CAROL, "roles": [ADMIN_ROLE]}],
        )
        with fake.patch_discord():
            world = World(fake, app)
            try:
                yield world
            finally:
                await world.stop()


@pytest.fixture
async def world(app: App) -> AsyncIterator[World]:
    """The fake Discord with the adapter connected (default settings: no message-content intent)."""
    async for w in world_for(app):
        await w.start()
        yield w


@pytest.fixture
async def offline_world(app: App) -> AsyncIterator[World]:
    """The fake Discord, the adapter not started yet (a test changes settings first)."""
    async for w in world_for(app):
        yield w


__all__ = ["World", "components", "discord", "labels", "visible_text"]
