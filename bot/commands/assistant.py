"""An assistant pane (Slack's AI-app split view): a greeting that suggests GPTs, and a pick.

Platform-neutral: an adapter whose platform opens a side pane sends the action `assistant:greet`
when a new pane thread starts; the core answers with a short greeting and a select of the top GPTs,
each option carrying the message that starts a conversation (`<slug>: <a starter>`). An adapter
may show those options as the platform's suggested prompts (they are sent back as messages, which
the usual `<gpt>: question` routing understands) or as a plain select (`assistant:pick`).
"""

from __future__ import annotations

from bot import policy
from bot.catalog import action
from bot.commands import invoke
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.replies import Option, Reply, Select
from store import search as catalog
from store.gpts import get_version
from store.models import Gpt

SUGGESTIONS = 8
GREETING = N_("Hi! I connect you with the GPTs of this store. Pick one below (or write `<gpt>: your question`), then just keep chatting here.")
EMPTY = N_("Hi! There are no GPTs to suggest yet. Build the first one with `/gpt create`.")
DEFAULT_STARTER = N_("What can you help me with?")


@action("assistant")
async def assistant(ctx: Ctx, args: list[str]) -> None:
    if args[:1] == ["greet"]:
        await greet(ctx)
    elif args[:1] == ["pick"]:
        await pick(ctx)
    else:
        raise UserError("This button is no longer available.")


async def greet(ctx: Ctx) -> None:
    workspace = policy.workspace_id(ctx)
    async with ctx.db.reader() as session:
        gpts: list[Gpt] = [gpt for gpt, _ in await catalog.top(session, viewer=ctx.account_id, limit=SUGGESTIONS,
                                                              workspace=workspace)]
        if len(gpts) < SUGGESTIONS:
            seen = {gpt.id for gpt in gpts}
            newest = await catalog.newest(session, limit=SUGGESTIONS, workspace=workspace)
            gpts += [gpt for gpt in newest if gpt.id not in seen][: SUGGESTIONS - len(gpts)]
        options = []
        for gpt in gpts:
            version = await get_version(session, gpt.current_version_id) if gpt.current_version_id else None
            starter = (version.starters[0] if version and version.starters else ctx._(DEFAULT_STARTER))[:100]
            options.append(Option(gpt.name, f"{gpt.slug}: {starter}"[:150], starter))
    if not options:
        await ctx.send(Reply(text=ctx._(EMPTY)))
        return
    await ctx.send(Reply(text=ctx._(GREETING), actions=(Select("assistant:pick", ctx._("Choose a GPT"), tuple(options)),)))


async def pick(ctx: Ctx) -> None:
    """A GPT chosen from the greeting: its conversation starts here with the suggested message."""
    chosen = ctx.action.values[0] if ctx.action and ctx.action.values else ""
    ref, _, prompt = chosen.partition(":")
    if not ref.strip():
        raise UserError("This button is no longer available.")
    gpt = await invoke.resolve(ctx, ref.strip())
    await invoke.start(ctx, gpt, invoke.check_prompt(ctx, prompt.strip() or ctx._(DEFAULT_STARTER)))
