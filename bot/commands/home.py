"""The storefront: featured, top this week, new, categories and the creator's own GPTs.

Rendered as neutral cards; Slack shows them in the App Home tab, other platforms never ask.
"""

from __future__ import annotations

from bot.commands.cards import rating_text
from bot.context import Ctx
from bot.replies import Button, Card, CardField, Option, Reply, Select, Style
from store import gpts as store_gpts
from store import search as catalog
from store.models import Category


async def render(ctx: Ctx) -> None:
    async with ctx.db.reader() as session:
        top = await catalog.top(session, viewer=ctx.account_id, limit=5)
        newest = await catalog.newest(session, limit=5)
        own = await store_gpts.mine(session, ctx.account_id)
    cards = [
        Card(ctx._("Top this week"), "\n".join(
            ctx._("**{name}** (`{slug}`) · {count} people", name=g.name, slug=g.slug, count=n) for g, n in top
        ) or ctx._("Nobody has used a GPT this week yet.")),
        Card(ctx._("New"), "\n".join(f"**{g.name}** (`{g.slug}`) — {g.description[:80]}" for g in newest)
             or ctx._("No GPTs yet. Be the first: `/gpt create`.")),
    ]
    if own:
        cards.append(Card(ctx._("My GPTs"), fields=tuple(
            CardField(g.name, ctx._("{uses} uses · {rating}", uses=g.uses, rating=rating_text(ctx, g)))
            for g in own[:10]
        )))
    actions = (
        Button(ctx._("Search"), "search-form", Style.PRIMARY),
        Button(ctx._("Create a GPT"), "create"),
        Select("browse-cat", ctx._("Browse a category"), tuple(Option(ctx._(c.value), c.value) for c in Category)),
    )
    await ctx.send(Reply(cards=tuple(cards), actions=actions))
