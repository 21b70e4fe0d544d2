"""Where a core reply goes on Discord: the interaction's response, a follow-up, a DM, a new thread.

An interaction must be acknowledged within 3 seconds of Discord sending it, and a modal can only be
the *first* response. A command that cannot open a form (the catalogue's `opens_form`) is
acknowledged at once with "thinking…"; for the others, and for buttons, the outbox answers with the
core's first reply when that comes quickly, and otherwise acknowledges when `ack_grace` runs out (a
"thinking…" deferral for a command, a silent one for a button), whatever the core or the LLM is
doing; every later reply is a follow-up or an edit. See `InteractionOutbox` for the choices.

Answers are streamed by posting the header at once (under a "thinking…" or "… is typing", with the
first words instead) and editing the message at most once per `edit_interval` (the final edit right
after the last chunk); past 2 000 characters the answer goes on in a further message. Nothing the
bot sends may ping anyone: GPT answers and names may contain `@everyone` or `<@id>`, so every send
and edit carries `AllowedMentions.none()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.adapters import discord_render as render
from bot.events import Event
from bot.i18n import N_
from bot.replies import Button, DeliveryRefused, Form, Reply, Sent, Target

if TYPE_CHECKING:
    from bot.adapters.discord import DiscordAdapter

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
DMS_CLOSED = 50007
Post = Callable[..., Awaitable[Any]]
FORM_AGAIN = N_("Open the form")
FORM_UNAVAILABLE = N_("This needs a form that I could not open here. Please try again.")


async def deliver(reply: Reply, first: Post, more: Post, *, interval: float, coming: bool = False) -> Any:
    """Post a reply: its text in as many messages as it takes, the cards and the components on the
    last one; or, for a stream, the header at once and then the answer as it is written. With
    `coming` (Discord already shows that an answer is coming: "thinking…", or "… is typing"), the
    header comes with the answer's first words, as soon as they are there."""
    parts = render.embeds(reply)
    components = render.view(reply.actions)
    if reply.stream is not None:
        return await _stream(reply, parts, components, first, more, interval, coming)
    chunks = render.split_text(reply.text)
    message = None
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        extra: dict[str, Any] = {"embeds": parts} if last else {}
        if last and components is not None:
            extra["view"] = components
        if not chunk and not extra.get("embeds") and "view" not in extra:
            chunk = "…"
        message = await (first if message is None else more)(content=chunk or None, allowed_mentions=NO_PINGS, **extra)
    return message


def _compose(head: str, body: str) -> str:
    return f"{head}\n{body}" if head and body else head or body


async def _stream(
    reply: Reply, parts: list[discord.Embed], components: discord.ui.View | None, first: Post, more: Post,
    interval: float, coming: bool,
) -> Any:
    assert reply.stream is not None
    loop = asyncio.get_running_loop()
    message: Any = None if coming else await first(content=_compose(reply.text, "…"), embeds=parts,
                                                   allowed_mentions=NO_PINGS)
    head, body, shown = reply.text, "", ""
    last_edit = loop.time()
    alive = True  # False once the message was deleted under us: the stream is still drained, so it is recorded

    async def edit(**kw: Any) -> None:
        nonlocal alive
        if not alive:
            return
        try:
            await message.edit(allowed_mentions=NO_PINGS, **kw)
        except discord.NotFound:
            log.info("the message being streamed into was deleted; the answer is still recorded")
            alive = False

    async for chunk in reply.stream:
        body += chunk
        text = _compose(head, body)
        if message is None and body.strip():  # the first words replace "thinking…" (or "typing")
            shown, last_edit = text[: render.TEXT_LIMIT], loop.time()
            message = await first(content=shown, embeds=parts, allowed_mentions=NO_PINGS)
        while len(text) > render.TEXT_LIMIT and alive:
            cut = render.cut_point(text)
            await edit(content=text[:cut].rstrip())
            head, body = "", text[cut:].lstrip("\n")
            text = body
            message = await more(content=text[: render.TEXT_LIMIT] or "…", allowed_mentions=NO_PINGS)
            shown, last_edit = text[: render.TEXT_LIMIT], loop.time()
        if text != shown and loop.time() - last_edit >= interval:
            await edit(content=text)
            shown, last_edit = text, loop.time()
    final: dict[str, Any] = {"content": _compose(head, body) or "…"}
    if components is not None:
        final["view"] = components
    if message is None:  # no words came at all
        return await first(embeds=parts, allowed_mentions=NO_PINGS, **final)
    if final["content"] != shown or components is not None:
        await edit(**final)
    return message


async def send_dm(user: discord.User | discord.Member, reply: Reply, *, interval: float) -> Sent:
    """A reply in the user's DMs with the bot; DeliveryRefused when their DMs are closed to it."""
    try:
        channel = await user.create_dm()
        message = await deliver(reply, channel.send, channel.send, interval=interval)
    except discord.Forbidden as exc:
        if exc.code == DMS_CLOSED:
            raise DeliveryRefused("the user's DMs are closed") from exc
        raise
    return Sent(str(message.id), str(channel.id))


class _Original:
    """The message an interaction's response is about (a deferred reply, or the message whose
    button was pressed), edited through the interaction's token."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.id = interaction.message.id if interaction.message is not None else 0

    async def edit(self, **kw: Any) -> Any:
        message = await self.interaction.edit_original_response(**kw)
        self.id = message.id
        return message


class _Outbox:
    """What every Discord outbox does the same way: DMs, new threads, streams."""

    def __init__(self, client: DiscordAdapter, event: Event, user: discord.User | discord.Member) -> None:
        self.client = client
        self.event = event
        self.user = user

    def _(self, msgid: str) -> str:
        return self.client.app.services.tr(self.client.locale_of(self.event), msgid)

    async def send(self, reply: Reply) -> Sent:
        if reply.target is Target.DM:
            return await self._to_dm(reply)
        if reply.target is Target.NEW_THREAD:
            return await self._to_new_thread(reply)
        if reply.form is not None:
            return await self._form(reply.form)
        return await self._here(reply)

    async def _here(self, reply: Reply) -> Sent:
        raise NotImplementedError

    async def _form(self, form: Form) -> Sent:
        raise NotImplementedError

    async def _anchor(self) -> discord.Message | None:
        raise NotImplementedError

    async def _acknowledge(self) -> None:
        return None

    async def _to_dm(self, reply: Reply) -> Sent:
        return await send_dm(self.user, reply, interval=self.client.edit_interval)

    async def _to_new_thread(self, reply: Reply) -> Sent:
        """A public thread on the message the event came from (the answer whose button was pressed),
        named by the core; the reply is its first message."""
        await self._acknowledge()
        name = render.thread_name(reply.thread_name)
        anchor = await self._anchor()
        if anchor is not None:
            thread = await anchor.create_thread(name=name)
        else:
            channel = self.client.get_channel(int(self.event.place.channel_id))
            if not isinstance(channel, discord.TextChannel):
                raise DeliveryRefused("no channel to open a thread in")
            thread = await channel.create_thread(name=name, type=discord.ChannelType.public_thread)
        message = await deliver(reply, thread.send, thread.send, interval=self.client.edit_interval)
        return Sent(str(message.id), str(thread.id), str(thread.id))


class InteractionOutbox(_Outbox):
    """Replies to one slash command, button, select or modal submission.

    * Until it is acknowledged, the first reply *is* the response (a message, a modal, or for
      `edit=True` on a component, the updated message). `acknowledge()` (called as the core starts
      for a command that cannot open a form, when `ack_grace` runs out, or before the core for
      `ack_grace=0`) defers: a command gets a "thinking…" message,
      ephemeral unless the command answers publicly (`ephemeral_deferral`); a component or a modal
      opened from one gets a silent deferral (type 6), after which replies are free follow-ups.
    * A reply whose visibility differs from the "thinking…" message replaces it (delete, follow up).
    * In a DM, ephemeral means nothing (the DM is private already, and ephemeral messages there
      vanish when the app reloads): everything is sent as a normal message.
    """

    def __init__(self, client: DiscordAdapter, interaction: discord.Interaction, event: Event, *,
                 ephemeral_deferral: bool) -> None:
        super().__init__(client, event, interaction.user)
        self.interaction = interaction
        self.in_dm = interaction.guild_id is None
        self.ephemeral_deferral = ephemeral_deferral and not self.in_dm
        self.lock = asyncio.Lock()
        self.thinking = False  # a "thinking…" message waits to be replaced
        self.component = interaction.type is discord.InteractionType.component or (
            interaction.type is discord.InteractionType.modal_submit and interaction.message is not None
        )

    def _done(self) -> bool:
        return self.interaction.response.is_done()

    async def acknowledge(self) -> None:
        async with self.lock:
            await self._defer()

    async def acknowledge_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        await asyncio.shield(self.acknowledge())  # never cut in the middle of the request

    async def _acknowledge(self) -> None:
        await self.acknowledge()

    async def _defer(self) -> None:
        if self._done():
            return
        if self.component:
            await self.interaction.response.defer()
        else:
            await self.interaction.response.defer(thinking=True, ephemeral=self.ephemeral_deferral)
            self.thinking = True

    async def finish(self) -> None:
        """After the core: the interaction is acknowledged, and no "thinking…" is left hanging."""
        try:
            async with self.lock:
                await self._defer()
                if self.thinking:
                    self.thinking = False
                    await self.interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not close interaction %s: %s", self.interaction.id, exc)

    async def _anchor(self) -> discord.Message | None:
        return self.interaction.message

    async def _form(self, form: Form) -> Sent:
        async with self.lock:
            if not self._done():
                await self.interaction.response.send_modal(render.modal(form))
                return Sent()
        # Acknowledged already (the core took longer than ack_grace): a modal can no longer open.
        # A button pressed again gets a fresh interaction, whose first reply is this modal.
        data: dict[str, Any] = dict(self.interaction.data or {})
        custom_id = str(data["custom_id"]) if self.component and data.get("custom_id") else None
        again = render.view([Button(self._(FORM_AGAIN), custom_id)]) if custom_id else None
        text = form.title if again else self._(FORM_UNAVAILABLE)
        kw: dict[str, Any] = {"view": again} if again else {}
        message = await self.interaction.followup.send(text, ephemeral=not self.in_dm, wait=True, allowed_mentions=NO_PINGS, **kw)
        return Sent(str(message.id), str(self.interaction.channel_id))

    async def _here(self, reply: Reply) -> Sent:
        ephemeral = reply.ephemeral and not self.in_dm
        if reply.edit and self.component:
            return await self._edit(reply)

        async def first(**kw: Any) -> Any:
            async with self.lock:
                if not self._done():
                    response = await self.interaction.response.send_message(ephemeral=ephemeral, **kw)
                    resource = response.resource
                    if isinstance(resource, discord.InteractionMessage):
                        return resource
                    return await self.interaction.original_response()
                if self.thinking:
                    self.thinking = False
                    if ephemeral == self.ephemeral_deferral:  # the "thinking…" message becomes the reply
                        return await self.interaction.edit_original_response(**_edit_kw(kw))
                    await self.interaction.delete_original_response()
                return await self.interaction.followup.send(ephemeral=ephemeral, wait=True, **kw)

        async def more(**kw: Any) -> Any:
            return await self.interaction.followup.send(ephemeral=ephemeral, wait=True, **kw)

        # "thinking…" of the same visibility is on screen: it becomes the answer (see `first`)
        coming = self.thinking and ephemeral == self.ephemeral_deferral
        message = await deliver(reply, first, more, interval=self.client.edit_interval, coming=coming)
        return Sent(str(message.id), str(self.interaction.channel_id))

    async def _edit(self, reply: Reply) -> Sent:
        """Replace the message whose button was pressed (paging through results)."""
        original = _Original(self.interaction)

        async def first(**kw: Any) -> Any:
            kw = _edit_kw(kw)
            async with self.lock:
                if not self._done():
                    await self.interaction.response.edit_message(**kw)
                    return original
            await original.edit(**kw)
            return original

        async def more(**kw: Any) -> Any:
            return await self.interaction.followup.send(ephemeral=reply.ephemeral and not self.in_dm, wait=True, **kw)

        message = await deliver(reply, first, more, interval=self.client.edit_interval)
        return Sent(str(message.id), str(self.interaction.channel_id))


def _edit_kw(kw: dict[str, Any]) -> dict[str, Any]:
    """A send's arguments as an edit's: what the reply does not have is cleared."""
    return {"content": kw.get("content"), "embeds": kw.get("embeds", []), "view": kw.get("view"),
            "allowed_mentions": NO_PINGS}


class MessageOutbox(_Outbox):
    """Replies to a message (in a DM, in a thread the bot follows, or one that mentions it): plain
    messages in the same place; a reply in a channel quotes the message it answers."""

    def __init__(self, client: DiscordAdapter, message: discord.Message, event: Event) -> None:
        super().__init__(client, event, message.author)
        self.message = message
        self.typing_shown = False  # "… is typing" shows in the channel while the core works

    async def _anchor(self) -> discord.Message | None:
        return self.message if self.message.guild is not None else None

    async def _form(self, form: Form) -> Sent:
        message = await self.message.channel.send(self._(FORM_UNAVAILABLE), allowed_mentions=NO_PINGS)
        return Sent(str(message.id), str(message.channel.id))

    async def _here(self, reply: Reply) -> Sent:
        channel = self.message.channel
        quote = self.message.guild is not None and not isinstance(channel, discord.Thread)
        sent_first = False

        async def first(**kw: Any) -> Any:
            nonlocal sent_first
            if quote and not sent_first:
                sent_first = True
                return await channel.send(
                    reference=self.message.to_reference(fail_if_not_exists=False), mention_author=False, **kw
                )
            return await channel.send(**kw)

        message = await deliver(reply, first, channel.send, interval=self.client.edit_interval, coming=self.typing_shown)
        return Sent(str(message.id), str(channel.id))


@contextlib.asynccontextmanager
async def typing(channel: discord.abc.Messageable) -> Any:
    """'The bot is typing…' while the core works, and whether it shows: a refusal to show it
    changes nothing else."""
    indicator = channel.typing()
    try:
        await indicator.__aenter__()
    except discord.HTTPException:
        yield False
        return
    try:
        yield True
    finally:
        await indicator.__aexit__(None, None, None)
