"""One module per command group; `load()` imports them so their declarations register."""

from __future__ import annotations

import importlib

from bot.context import Ctx
from bot.i18n import N_
from bot.replies import Reply

MODULES = ("discover", "invoke", "build", "mine", "feedback", "home", "admin", "earnings", "assistant")


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"bot.commands.{name}")


async def route_message(ctx: Ctx) -> None:
    """A plain message: the builder in a DM, else the GPT this thread or DM follows.

    The builder owns the DM itself, not threads inside it (Slack's assistant pane is a DM thread
    where a member talks to GPTs, even while a draft waits in the Messages tab)."""
    from bot.commands import build, invoke
    from store import conversations

    place = ctx.place
    if place.is_dm and not place.thread_id and await build.on_dm_message(ctx):
        return
    async with ctx.db.lookups() as session:
        if place.thread_id:
            conversation = await conversations.by_thread(session, platform=ctx.actor.platform, thread_ref=place.thread_id)
        elif place.is_dm:
            conversation = await conversations.dm_conversation(session, platform=ctx.actor.platform, channel_ref=place.channel_id)
        else:
            conversation = None
    if conversation is not None:
        if getattr(ctx.event, "content_hidden", False) and not ctx.text.strip():
            await ctx.send(Reply(text=ctx._(HIDDEN_HINT)))
            return
        await invoke.continue_conversation(ctx, conversation, ctx.text)
        return
    if place.is_dm or ctx.event.mentioned:  # type: ignore[union-attr]
        await mention(ctx)


async def mention(ctx: Ctx) -> None:
    """`@gptstore <gpt>: question` in a channel (or a DM with no GPT chosen yet); in a channel
    whose admins chose a default GPT, `@gptstore question` talks to that one."""
    from bot import policy
    from bot.commands import invoke
    from bot.errors import NotFound

    text = ctx.text.strip()
    ref, sep, prompt = text.partition(":")
    default = await policy.channel_default(ctx)
    if sep and prompt.strip() and len(ref) <= 60:
        try:
            gpt = await invoke.resolve(ctx, ref.strip())
        except NotFound:
            if default is None:
                raise
        else:
            await invoke.start(ctx, gpt, invoke.check_prompt(ctx, prompt))
            return
    if default is not None and text:
        await policy.check(ctx, default)
        await invoke.start(ctx, default, invoke.check_prompt(ctx, text))
        return
    await ctx.send(Reply(text=ctx._(HINT), ephemeral=True))


HIDDEN_HINT = N_("I can only read messages here that mention me. To go on with this GPT, mention me in your message, or reply to my last answer.")
HINT = N_("To talk to a GPT, write `<gpt>: your question`, use `/gpt ask`, or `/gpt use <gpt>` in a DM. `/gpt help` lists everything.")


async def open_home(ctx: Ctx) -> None:
    """The storefront tab (Slack's App Home); adapters without one never send this event."""
    from bot.commands import home

    await home.render(ctx)
