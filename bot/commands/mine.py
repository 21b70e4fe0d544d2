"""A creator's own GPTs: list them, unpublish, delete."""

from __future__ import annotations

from sqlalchemy import update

from bot.catalog import OptionType, action, command, opt
from bot.commands import curation
from bot.commands.build import own_gpt
from bot.commands.cards import rating_text
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.replies import Button, Card, CardField, Reply, Style
from store import gpts as store_gpts
from store.models import Gpt, GptStatus


@command("gpt", "unpublish", N_("Hide one of your GPTs from everyone else"), opt("gpt", N_("Your GPT"), OptionType.GPT))
async def unpublish(ctx: Ctx, gpt: str) -> None:
    found, _ = await own_gpt(ctx, gpt)
    async with ctx.db.session() as session:
        await session.execute(update(Gpt).where(Gpt.id == found.id).values(status=GptStatus.UNPUBLISHED))  # type: ignore[arg-type]
    await ctx.say("“{name}” is unpublished: only you can see it now. `/gpt edit` and publish to bring it back.", name=found.name)


@command("gpt", "delete", N_("Delete one of your GPTs"), opt("gpt", N_("Your GPT"), OptionType.GPT))
async def delete_gpt(ctx: Ctx, gpt: str) -> None:
    found, _ = await own_gpt(ctx, gpt)
    await ctx.send(Reply(
        text=ctx._("Delete “{name}”? Its conversations stop and its name becomes free.", name=found.name),
        actions=(Button(ctx._("Delete for good"), f"delete:{found.id}", Style.DANGER),), ephemeral=True,
    ))


@action("delete")
async def confirm_delete(ctx: Ctx, args: list[str]) -> None:
    async with ctx.db.session() as session:
        gpt = await session.get(Gpt, int(args[0])) if args and args[0].isdigit() else None
        if gpt is None or gpt.creator_id != ctx.account_id or gpt.status == GptStatus.DELETED:
            raise UserError("This GPT is already gone.")
        gpt.status = GptStatus.DELETED
        gpt.name_key = None
        session.add(gpt)
    await ctx.say("“{name}” is deleted.", name=gpt.name)


@command("gpt", "mine", N_("Your GPTs, with their uses and ratings"))
async def mine(ctx: Ctx) -> None:
    async with ctx.db.reader() as session:
        own = await store_gpts.mine(session, ctx.account_id)
        remixes = await store_gpts.remix_counts(session, [g.id for g in own if g.id is not None])
    notes = await curation.owner_notes(ctx, own)
    if not own:
        await ctx.say("You have no GPTs yet. `/gpt create` builds one with you in a DM.")
        return
    fields = tuple(
        CardField(
            f"{gpt.name} (`{gpt.slug}`)",
            ctx._("{status} · {visibility} · v{version} · {uses} uses · {rating}",
                  status=ctx._(gpt.status), visibility=ctx._(gpt.visibility), version=gpt.version_count,
                  uses=gpt.uses, rating=rating_text(ctx, gpt))
            + (ctx._(" · remixed {count}×", count=remixes[gpt.id or 0]) if remixes.get(gpt.id or 0) else "")
            + notes.get(gpt.id or 0, ""),
            inline=False,
        )
        for gpt in own[:25]
    )
    await ctx.send(Reply(card=Card(title=ctx._("Your GPTs"), fields=fields, footer=curation.ban_note(ctx) or ""),
                         ephemeral=True))
