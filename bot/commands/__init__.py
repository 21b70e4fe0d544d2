"""One module per command group; `load()` imports them so their declarations register."""

from __future__ import annotations

import importlib

from bot.context import Ctx
from bot.i18n import N_
from bot.replies import Reply

MODULES = ("discover", "invoke", "build", "feedback", "home")


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"bot.commands.{name}")


async def route_message(ctx: Ctx) -> None:
    """A plain message: the builder in a DM, else the GPT this thread or DM follows."""
    from bot.commands import build, invoke
    from store import conversations

    place = ctx.place
    if place.is_dm and await build.on_dm_message(ctx):
        return
    async with ctx.db.reader() as session:
        if place.thread_id:
            conversation = await conversations.by_thread(session, platform=ctx.actor.platform, thread_ref=place.thread_id)
        elif place.is_dm:
            conversation = await conversations.dm_conversation(session, platform=ctx.actor.platform, channel_ref=place.channel_id)
        else:
            conversation = None
    if conversation is not None:
        await invoke.continue_conversation(ctx, conversation, ctx.text)
        return
    if place.is_dm or ctx.event.mentioned:  # type: ignore[union-attr]
        await mention(ctx)


async def mention(ctx: Ctx) -> None:
    """`@gptstore <gpt>: question` in a channel (or a DM with no GPT chosen yet)."""
    from bot.commands import invoke

    text = ctx.text.strip()
    ref, sep, prompt = text.partition(":")
    if sep and prompt.strip() and len(ref) <= 60:
        gpt = await invoke.resolve(ctx, ref.strip())
        await invoke.start(ctx, gpt, invoke.check_prompt(ctx, prompt))
        return
    await ctx.send(Reply(text=ctx._(HINT), ephemeral=True))


HINT = N_("To talk to a GPT, write `<gpt>: your question`, use `/gpt ask`, or `/gpt use <gpt>` in a DM. `/gpt help` lists everything.")


async def open_home(ctx: Ctx) -> None:
    """The storefront tab (Slack's App Home); adapters without one never send this event."""
    from bot.commands import home

    await home.render(ctx)
