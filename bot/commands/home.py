"""The storefront: featured, top this week, new, categories and the creator's own GPTs.

Rendered as neutral cards; Slack shows them in the App Home tab, other platforms never ask.
A creator's "My GPTs" shows each GPT's uses, rating and this period's estimated earnings: the
estimate `/gpt earnings` shows (billing.estimates), split over the creator's GPTs by points.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from billing.estimates import Estimate, estimate
from billing.money import fmt
from bot import policy
from bot.commands.cards import rating_text
from bot.context import Ctx
from bot.replies import Button, Card, CardField, Option, Reply, Select, Style
from store import gpts as store_gpts
from store import search as catalog
from store.models import Category, Gpt, utcnow
from store.policy import admissible, featured_ids


async def render(ctx: Ctx) -> None:
    ws = policy.workspace_id(ctx)
    async with ctx.db.reader() as session:
        top = await catalog.top(session, viewer=ctx.account_id, limit=5, workspace=ws)
        newest = await catalog.newest(session, limit=5, workspace=ws)
        own = await store_gpts.mine(session, ctx.account_id)
        featured = await _featured(session, ws)
    cards = [Card(ctx._("Featured here"), "\n".join(
        f"⭐ **{g.name}** (`{g.slug}`) — {g.description[:80]}" for g in featured
    ))] if featured else []
    cards += [
        Card(ctx._("Top this week"), "\n".join(
            ctx._("**{name}** (`{slug}`) · {count} people", name=g.name, slug=g.slug, count=n) for g, n in top
        ) or ctx._("Nobody has used a GPT this week yet.")),
        Card(ctx._("New"), "\n".join(f"**{g.name}** (`{g.slug}`) — {g.description[:80]}" for g in newest)
             or ctx._("No GPTs yet. Be the first: `/gpt create`.")),
    ]
    if own:
        async with ctx.db.session() as session:  # a period's first estimate opens its row
            est = await estimate(session, ctx.settings, ctx.account_id, utcnow())
        cards.append(Card(ctx._("My GPTs"), fields=tuple(
            CardField(g.name, ctx._("{uses} uses · {rating} · {earnings}", uses=g.uses, rating=rating_text(ctx, g),
                                    earnings=_earnings(ctx, est, g)))
            for g in own[:10]
        ), footer=_why_none(ctx, est)))
    actions = (
        Button(ctx._("Search"), "search-form", Style.PRIMARY),
        Button(ctx._("Create a GPT"), "create"),
        Select("browse-cat", ctx._("Browse a category"), tuple(Option(ctx._(c.value), c.value) for c in Category)),
    )
    await ctx.send(Reply(cards=tuple(cards), actions=actions))


def _earnings(ctx: Ctx, est: Estimate, gpt: Gpt) -> str:
    amount = fmt(est.per_gpt.get(gpt.id or 0, 0), est.currency)
    return ctx._("est. {amount} this period", amount=amount)


def _why_none(ctx: Ctx, est: Estimate) -> str:
    """Why an ineligible creator's estimates are all zero (the fix is in `/gpt payout-settings`)."""
    from bot.commands.earnings import REASONS  # here: importing it declares its commands, in catalogue order

    if est.eligible or est.line is None:
        return ""
    return ctx._("No earnings this period: {reason}", reason=ctx._(REASONS[est.line.reason]))


async def _featured(session: AsyncSession, ws: int | None) -> list[Gpt]:
    """What this workspace's admins feature, as far as its members may see it (first on the home tab)."""
    if ws is None:
        return []
    shown = await admissible(session, await featured_ids(session, ws), workspace_id=ws)
    rows = await session.execute(select(Gpt).where(Gpt.id.in_(list(shown))).order_by(Gpt.name))  # type: ignore[union-attr]
    return list(rows.scalars())
