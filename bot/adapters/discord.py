"""The Discord adapter: the store inside Discord servers, on discord.py.

A thin translator, as the design asks: slash commands, autocomplete, button presses, select
choices, modal submissions and messages become core events; core replies become messages, embeds,
components, modals, DMs and threads (discord_outbox.py, discord_render.py). No rule about GPTs,
permissions or money lives here: "is this person a server admin" is Discord's Manage Server
permission, passed on as `Actor.is_admin`, and the core decides what that allows.

Which messages reach the core: every DM; in a server, messages that mention the bot; in a thread,
also every message when the message-content intent is on (a setting), else in threads the bot
opened ("Continue in thread"), where a message whose text Discord withheld makes the core say how
to go on (mention or reply), at most once every ten minutes per thread.

Files attached to a message travel with it as `Attachment`s (name, size and type from Discord's
payload); the bytes come from Discord's CDN only if the core asks for them (`fetch`), so a file
nobody wants is never downloaded.

Components are routed by custom id (= the core's action id) from `on_interaction`, not by views
kept in memory, so a button on a week-old message works after a restart, on any replica.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.discord_commands import CoreTranslator, build_tree, sync_if_changed
from bot.adapters.discord_outbox import NO_PINGS, InteractionOutbox, MessageOutbox, send_dm, typing
from bot.adapters.discord_render import form_values
from bot.bootstrap import App
from bot.catalog import CATALOG, CommandSpec, OptionSpec
from bot.events import Action, Actor, Attachment, Autocomplete, Command, Event, Message, Place
from bot.i18n import normalize_locale
from bot.replies import DeliveryRefused, Reply

if TYPE_CHECKING:
    from bot.commands.earnings import StatementDMs

log = logging.getLogger(__name__)

PLATFORM = "discord"
# Commands whose answer is public (the "thinking…" message, if one is needed, is public too);
# every other command answers only the person who ran it (discovery lists, settings, admin).
PUBLIC_ANSWERS = frozenset({("gpt", "ask"), ("gpt", "info")})
HINT_EVERY = 600.0  # seconds between two "mention me to go on" hints in one thread
AUTOCOMPLETE_DEADLINE = 2.0  # Discord drops autocomplete answers after 3 s
MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class DiscordAdapter(discord.AutoShardedClient):
    """The bot's gateway client. Shard count and the shards this process runs come from the
    settings, so a large deployment splits shards across processes over one PostgreSQL; only the
    process that runs shard 0 (or all shards) registers the commands."""

    def __init__(
        self, app: App, *, guild_ready_timeout: float = 2.0, ack_grace: float = 1.0, edit_interval: float = 1.0,
        sync_commands: bool | None = None, **options: Any,
    ) -> None:
        settings = app.settings
        shard_ids = list(settings.discord_shard_ids) or None
        if shard_ids and not settings.discord_shard_count:
            raise ValueError("GPTSTORE_DISCORD_SHARD_IDS needs GPTSTORE_DISCORD_SHARD_COUNT (the total number of shards)")
        # Only the events the bot reads: servers and their channels, and messages (a GPT's thread,
        # a DM). Typing, reactions, voice, invites… are a steady flood in a big server, each one
        # parsed into objects for nothing.
        intents = discord.Intents(guilds=True, guild_messages=True, dm_messages=True,
                                  message_content=settings.discord_message_content)
        if shard_ids:
            options["shard_ids"] = shard_ids
        sent = aiohttp.TraceConfig()  # tells an acknowledgement when it is on the wire (see `_acknowledge`)
        sent.on_request_headers_sent.append(_written)
        options.setdefault("http_trace", sent)
        super().__init__(
            intents=intents, shard_count=settings.discord_shard_count, allowed_mentions=NO_PINGS,
            guild_ready_timeout=guild_ready_timeout, **options,
        )
        _ignore_edits(self)
        self.app = app
        self.ack_grace = ack_grace
        self.edit_interval = edit_interval
        self.sync_commands = sync_commands if sync_commands is not None else (not shard_ids or 0 in shard_ids)
        self.tree = build_tree(self, CATALOG, on_command=self._command, on_autocomplete=self._autocomplete)
        self.tree.error(self._tree_error)
        self.started = asyncio.Event()
        self._hinted: dict[int, float] = {}
        self.in_flight = 0  # interactions being handled, acknowledgement and clean-up included
        self._in_order: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._statements: StatementDMs | None = None
        self.statements_caught_up: asyncio.Task[None] | None = None  # the start-up delivery

    # --- start-up and servers ---------------------------------------------------------------------
    async def setup_hook(self) -> None:
        await self.tree.set_translator(CoreTranslator(self.app.services.tr))
        if self.sync_commands:
            assert self.application_id is not None
            try:
                await sync_if_changed(
                    self.tree, application_id=self.application_id, guild_id=self.app.settings.discord_dev_guild,
                    remembered=self.app.core.adapter_state, remember=self.app.core.set_adapter_state,
                )
            except discord.HTTPException:
                log.exception("Discord refused the commands; the ones registered before stay in use")
        # creators' statements: after every close, and now for a close that happened while we were away
        from bot.commands.earnings import catch_up_statements, statement_dms  # loaded by the core by now

        self._statements = statement_dms(self.app.services, PLATFORM, self.send_dm)
        self.statements_caught_up = asyncio.create_task(catch_up_statements(self._statements, PLATFORM))
        self.started.set()

    async def send_dm(self, user_id: str, reply: Reply) -> None:
        """One DM to a user known only by id (a statement), rendered like every DM the core sends."""
        try:
            user = self.get_user(int(user_id)) or await self.fetch_user(int(user_id))
        except discord.NotFound as exc:
            raise DeliveryRefused("no such Discord user") from exc
        await send_dm(user, reply, interval=self.edit_interval)

    async def close(self) -> None:
        if self._statements is not None:
            self._statements.unregister()
            self._statements = None
        if self.statements_caught_up is not None and not self.statements_caught_up.done():
            self.statements_caught_up.cancel()
        await super().close()

    async def on_ready(self) -> None:
        """Servers that added the bot while it was away get their workspace too."""
        await self.app.core.workspaces_joined(PLATFORM, [(str(g.id), g.name) for g in self.guilds])

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.app.core.workspaces_joined(PLATFORM, [(str(guild.id), guild.name)])

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.app.core.workspace_left(PLATFORM, str(guild.id))

    def locale_of(self, event: Event) -> str:
        return normalize_locale(event.actor.locale, self.app.settings.default_locale)

    # --- interactions -----------------------------------------------------------------------------
    async def _command(self, interaction: discord.Interaction, spec: CommandSpec, values: dict[str, Any]) -> None:
        options = {name: value for name, value in values.items() if value is not None}
        event = Command(actor_of(interaction), place_of(interaction), str(interaction.id), spec.group, spec.name, options)
        await self.run_interaction(interaction, event, ephemeral=(spec.group, spec.name) not in PUBLIC_ANSWERS,
                                   may_open_form=spec.opens_form)

    async def _autocomplete(
        self, interaction: discord.Interaction, spec: CommandSpec, option: OptionSpec, current: str
    ) -> list[app_commands.Choice[str]]:
        event = Autocomplete(actor_of(interaction), place_of(interaction), str(interaction.id), spec.group, spec.name,
                             option.name, current)
        try:
            choices = await asyncio.wait_for(self.app.core.autocomplete(event), AUTOCOMPLETE_DEADLINE)
        except Exception:  # a late or failed suggestion list is an empty one; the command still works
            log.warning("autocomplete for /%s %s failed or was late", spec.group, spec.name, exc_info=True)
            return []
        return [app_commands.Choice(name=c.name[:100] or c.value[:100], value=c.value[:100]) for c in choices[:25]]

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Buttons, selects and modal submissions, whatever message they are on: by custom id to the core."""
        data: dict[str, Any] = dict(interaction.data or {})
        if interaction.type is discord.InteractionType.component:
            values = tuple(str(v) for v in data.get("values", []))
            event: Event = Action(actor_of(interaction), place_of(interaction), str(interaction.id), str(data["custom_id"]), values)
        elif interaction.type is discord.InteractionType.modal_submit:
            event = Action(actor_of(interaction), place_of(interaction), str(interaction.id), str(data["custom_id"]),
                           form=form_values(data.get("components", [])))
        else:
            return
        await self.run_interaction(interaction, event, ephemeral=True)

    async def _tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """A command Discord still shows but this catalogue no longer has (or has changed): the core says so."""
        if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
            data: dict[str, Any] = dict(interaction.data or {})
            sub = next((o["name"] for o in data.get("options", []) if o.get("type") == 1), "")
            event = Command(actor_of(interaction), place_of(interaction), str(interaction.id), str(data.get("name", "")), sub, {})
            await self.run_interaction(interaction, event, ephemeral=True)
            return
        log.error("command error", exc_info=error)

    async def run_interaction(self, interaction: discord.Interaction, event: Event, *, ephemeral: bool,
                              may_open_form: bool = True) -> None:
        """The core handles the event while Discord is answered in time.

        A command whose first reply cannot be a form (the catalogue says which can) is acknowledged
        ("thinking…") before the core starts on it: under a burst the core's work for the commands
        ahead of it would otherwise hold the acknowledgement back by a second or more (measured in
        bench/platform.py), and its first reply waits for the acknowledgement anyway. Anything else
        (buttons, forms, commands that may open a form) keeps the grace timer, so a quick first reply
        can still be a modal, or the updated message in one call."""
        out = InteractionOutbox(self, interaction, event, ephemeral_deferral=ephemeral)
        timer = None
        expired = False
        self.in_flight += 1
        try:
            if self.ack_grace <= 0 or not may_open_form:  # no modal can open after this
                try:
                    await self._acknowledge(out)
                except discord.NotFound:  # too late: Discord has told the person the app did not respond
                    log.error("interaction %s expired before it could be acknowledged; not handled", interaction.id)
                    expired = True
                    return
                except discord.HTTPException as exc:  # the core's first reply tries the response again
                    log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            else:
                timer = asyncio.create_task(out.acknowledge_after(self.ack_grace))
            await self.app.core.handle(event, out)
        finally:
            try:
                if timer is not None:
                    timer.cancel()
                    try:
                        await timer
                    except asyncio.CancelledError:
                        pass
                    except discord.HTTPException as exc:
                        log.error("could not acknowledge interaction %s in time: %s", interaction.id, exc)
                if not expired:
                    await out.finish()
            finally:
                self.in_flight -= 1

    async def _acknowledge(self, out: InteractionOutbox) -> None:
        """"thinking…", ahead of the core's work for other events until the request is written (and
        no longer: Discord's round trip holds no one back). See `Admission.urgent`."""
        with self.app.core.urgent() as written:
            token = _on_written.set(written)
            try:
                await out.acknowledge()
            finally:
                _on_written.reset(token)

    # --- messages ---------------------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in MESSAGE_TYPES or self.user is None:
            return
        event, show_typing = self.message_event(message)
        if event is None:
            return
        out = MessageOutbox(self, message, event)
        # one message at a time per DM or thread, in the order written: a conversation's next
        # message is answered with the previous answer in its history, a builder step after the last
        lock = self._in_order.setdefault(message.channel.id, asyncio.Lock())
        async with lock:
            if show_typing:
                async with typing(message.channel) as shown:
                    out.typing_shown = shown
                    await self.app.core.handle(event, out)
            else:
                await self.app.core.handle(event, out)

    def message_event(self, message: discord.Message) -> tuple[Message | None, bool]:
        """The core event for a message, if it is one the bot should see, and whether to show 'typing…'."""
        assert self.user is not None
        me = self.user.id
        mentioned = message.guild is not None and any(user.id == me for user in message.mentions)
        text = re.sub(rf"<@!?{me}>", " ", message.content).strip()
        channel = message.channel
        author = message.author
        actor = Actor(PLATFORM, str(author.id), author.display_name, is_admin=_manages(author), locale="")
        files = attachments_of(message)
        if message.guild is None:
            place = Place(None, str(channel.id), is_dm=True, message_id=str(message.id))
            return Message(actor, place, str(message.id), text, files=files), True
        hidden = not mentioned and not self.intents.message_content
        if isinstance(channel, discord.Thread):
            ours = channel.owner_id == me
            if not (mentioned or ours or self.intents.message_content):
                return None, False
            if hidden and not self._may_hint(channel.id):
                return None, False
            place = Place(str(message.guild.id), str(channel.parent_id), thread_id=str(channel.id),
                          message_id=str(message.id), workspace_name=message.guild.name)
            return Message(actor, place, str(message.id), text, mentioned=mentioned, content_hidden=hidden,
                           files=files), not hidden
        if not mentioned:
            return None, False
        place = Place(str(message.guild.id), str(channel.id), message_id=str(message.id), workspace_name=message.guild.name)
        return Message(actor, place, str(message.id), text, mentioned=True, files=files), True

    def _may_hint(self, thread_id: int) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._hinted.get(thread_id, -HINT_EVERY) < HINT_EVERY:
            return False
        if len(self._hinted) > 10_000:
            self._hinted = {k: t for k, t in self._hinted.items() if now - t < HINT_EVERY}
        self._hinted[thread_id] = now
        return True


_on_written: ContextVar[Callable[[], None] | None] = ContextVar("_on_written", default=None)
"""Set by the task sending an acknowledgement; aiohttp's trace runs in that task."""


async def _written(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestHeadersSentParams) -> None:
    if (written := _on_written.get()) is not None:
        written()


def _ignore_edits(client: discord.Client) -> None:
    """Message edits are not parsed. Every streamed edit of an answer comes back from the gateway
    as MESSAGE_UPDATE, and discord.py builds a whole Message from each (4.6 % of the bot's CPU in a
    burst of answers, `python -m bench --only platform` under py-spy); nothing here reads edits.
    `parsers` is discord.py's table of gateway event handlers: if it ever changes shape, edits are
    simply parsed again."""
    parsers = getattr(getattr(client, "_connection", None), "parsers", None)
    if isinstance(parsers, dict) and "MESSAGE_UPDATE" in parsers:
        parsers["MESSAGE_UPDATE"] = lambda data: None


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    """The message's files as the core sees them; each is downloaded only when `fetch` is awaited."""
    return tuple(Attachment(a.filename, a.size, a.content_type or "", fetch=_downloader(a)) for a in message.attachments)


def _downloader(attachment: discord.Attachment) -> Callable[[int], Awaitable[bytes]]:
    async def fetch(limit: int) -> bytes:
        """Through discord.py's own HTTP session (its proxy settings apply). Discord measured the file,
        and the core compared that size with `limit` before asking, so reading it whole is bounded;
        the cut keeps the answer within `limit` bytes whatever the CDN sends."""
        data = await attachment.read()
        return data[:limit]

    return fetch


def _manages(user: discord.abc.User) -> bool:
    return isinstance(user, discord.Member) and user.guild_permissions.manage_guild


def actor_of(interaction: discord.Interaction) -> Actor:
    """Who: a server admin is someone with Manage Server in that server (Discord computes it)."""
    permissions = interaction.permissions
    is_admin = interaction.guild_id is not None and (permissions.manage_guild or permissions.administrator)
    return Actor(PLATFORM, str(interaction.user.id), interaction.user.display_name, is_admin=is_admin,
                 locale=interaction.locale.value)


def place_of(interaction: discord.Interaction) -> Place:
    """Where: a thread is its parent channel plus the thread id, as the core expects."""
    message_id = str(interaction.message.id) if interaction.message is not None else None
    if interaction.guild_id is None:
        return Place(None, str(interaction.channel_id), is_dm=True, message_id=message_id)
    name = interaction.guild.name if interaction.guild is not None else ""
    channel = interaction.channel
    parent = getattr(channel, "parent_id", None)
    if isinstance(channel, discord.Thread) and parent is not None:
        return Place(str(interaction.guild_id), str(parent), thread_id=str(channel.id), message_id=message_id, workspace_name=name)
    return Place(str(interaction.guild_id), str(interaction.channel_id), message_id=message_id, workspace_name=name)


async def start(app: App) -> Callable[[], Awaitable[None]]:
    """Log in, register the commands if they changed, connect; returns the function that stops it.

    If the connection later ends for good (the token revoked, a privileged intent not enabled in the
    Developer Portal), the process is asked to stop (SIGTERM), so its supervisor sees it."""
    if app.settings.discord_token is None:
        raise RuntimeError("GPTSTORE_DISCORD_TOKEN is not set")
    client = DiscordAdapter(app)
    task = asyncio.create_task(client.start(app.settings.discord_token.get_secret_value()), name="discord")
    started = asyncio.create_task(client.started.wait())
    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        await client.close()
        error = task.exception()
        if isinstance(error, discord.LoginFailure):
            raise RuntimeError("Discord refused GPTSTORE_DISCORD_TOKEN. Copy the bot token again from the Developer Portal.") from error
        raise RuntimeError(f"The Discord adapter could not start: {error!r}") from error
    closing = False

    def ended(done: asyncio.Task[None]) -> None:
        if closing or done.cancelled():
            return
        error = done.exception()
        if isinstance(error, discord.PrivilegedIntentsRequired):
            log.critical("Discord refused the message-content intent: enable it for the bot in the Developer Portal, "
                         "or unset GPTSTORE_DISCORD_MESSAGE_CONTENT")
        else:
            log.critical("the Discord connection ended for good: %r", error)
        os.kill(os.getpid(), signal.SIGTERM)

    task.add_done_callback(ended)

    async def close() -> None:
        nonlocal closing
        closing = True
        await client.close()
        try:
            await asyncio.wait_for(task, 10)
        except Exception:
            log.exception("the Discord client did not stop cleanly")

    return close


__all__ = ["DiscordAdapter", "PLATFORM", "start"]
