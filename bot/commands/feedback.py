"""Rating and reporting GPTs."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import select

from bot.catalog import OptionType, command, opt
from bot.commands.invoke import resolve
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.policy import Purpose
from store.models import Gpt, Rating, Report, utcnow


@command("gpt", "rate", N_("Rate a GPT from 1 to 5 stars"),
         opt("gpt", N_("The GPT"), OptionType.GPT),
         opt("stars", N_("1 to 5"), OptionType.INTEGER, min_value=1, max_value=5),
         opt("review", N_("A few words (optional)"), required=False, max_length=1000))
async def rate(ctx: Ctx, gpt: str, stars: int, review: str | None = None) -> None:
    found = await resolve(ctx, gpt, purpose=Purpose.SEE)  # rating or reporting is not a use
    if found.creator_id == ctx.account_id:
        raise UserError("You cannot rate your own GPT.")
    async with ctx.db.session() as session:
        existing = (await session.execute(
            select(Rating).where(Rating.gpt_id == found.id, Rating.account_id == ctx.account_id)
        )).scalar_one_or_none()
        if existing is None:
            session.add(Rating(gpt_id=found.id or 0, account_id=ctx.account_id, stars=stars, review=review or ""))
        else:
            existing.stars, existing.review, existing.updated_at = stars, review or existing.review, utcnow()
            session.add(existing)
        await session.flush()
        total, count = (await session.execute(
            select(func.coalesce(func.sum(Rating.stars), 0), func.count()).where(Rating.gpt_id == found.id)
        )).one()
        await session.execute(update(Gpt).where(Gpt.id == found.id).values(rating_sum=total, rating_count=count))  # type: ignore[arg-type]
    await ctx.say("Thanks! You rated **{name}** {stars}/5.", name=found.name, stars=stars)


@command("gpt", "report", N_("Report a GPT to the operator"),
         opt("gpt", N_("The GPT"), OptionType.GPT), opt("reason", N_("What is wrong"), max_length=1000))
async def report(ctx: Ctx, gpt: str, reason: str) -> None:
    found = await resolve(ctx, gpt, purpose=Purpose.SEE)  # rating or reporting is not a use
    async with ctx.db.session() as session:
        session.add(Report(gpt_id=found.id or 0, account_id=ctx.account_id, reason=reason))
    await ctx.say("Thank you. The operator will review your report about **{name}**.", name=found.name)
