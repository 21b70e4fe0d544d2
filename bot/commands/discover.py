"""Finding GPTs: search, browse, top, new, info, help.

Ranking is published, not secret: `top` and `info` say how a place is earned (people with a
successful use in the last 7 days, then rating), and `new` shows rising GPTs so new creators
are seen.
"""

from __future__ import annotations

from bot import policy
from bot.catalog import CATALOG, OptionType, action, command, opt
from bot.commands import curation
from bot.commands.cards import gpt_card, gpt_line, rating_text, starter_buttons
from bot.commands.invoke import names_for, resolve
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.replies import Button, Card, CardField, Option, Reply, Select
from store import search as catalog
from store.gpts import get_version, remixes_of
from store.models import Category, Gpt

PER_PAGE = 5
RANKING = N_("Ranked by the number of different people who used each GPT successfully in the last 7 days (creators' own use and previews do not count), then by rating.")


async def _listing(ctx: Ctx, title: str, gpts: list[Gpt], *, empty: str, extra: dict[int, str] | None = None,
                   actions: tuple = (), edit: bool = False, footer: str = "") -> None:
    if not gpts:
        await ctx.send(Reply(text=ctx._(empty), actions=actions, edit=edit, ephemeral=True))
        return
    async with ctx.db.lookups() as session:
        names, featured = await catalog.listing_marks(session, gpts, policy.workspace_id(ctx))
    lines = []
    for gpt in gpts:
        line = gpt_line(ctx, gpt, names.get(gpt.id or 0, "?"))
        if gpt.id in featured:
            line += "\n⭐ " + ctx._("Featured by this server's admins")
        if extra and gpt.id in extra:
            line += f"\n_{extra[gpt.id]}_"
        lines.append(line)
    card = Card(title=title, description="\n\n".join(lines), footer=footer)
    await ctx.send(Reply(card=card, actions=actions, edit=edit, ephemeral=True))


def _pager(prefix: str, page: int, has_more: bool, ctx: Ctx) -> tuple[Button, ...]:
    buttons = []
    if page > 0:
        buttons.append(Button(ctx._("◀ Previous"), f"{prefix}:{page - 1}"))
    if has_more:
        buttons.append(Button(ctx._("Next ▶"), f"{prefix}:{page + 1}"))
    return tuple(buttons)


@command("gpt", "search", N_("Search the GPT store"), opt("query", N_("Words to look for"), max_length=200))
async def search_cmd(ctx: Ctx, query: str) -> None:
    await _search_page(ctx, query, 0, edit=False)


async def _search_page(ctx: Ctx, query: str, page: int, *, edit: bool) -> None:
    async with ctx.db.lookups() as session:
        result = await catalog.search(session, query, viewer=ctx.account_id, page=page, per_page=PER_PAGE,
                                      workspace=policy.workspace_id(ctx))
    safe_query = query.replace(":", " ")[:60]
    await _listing(
        ctx, ctx._("Search: {query} (page {page})", query=query[:100], page=page + 1), result.gpts,
        empty=N_("No GPT matches that search. Try other words, or `/gpt browse`."),
        actions=_pager(f"search:{safe_query}", page, result.has_more, ctx), edit=edit,
    )


@action("search")
async def search_page(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[-1].isdigit():
        raise UserError("This button is no longer available.")
    await _search_page(ctx, ":".join(args[:-1]), int(args[-1]), edit=True)


def _category(value: str | None) -> str | None:
    if not value:
        return None
    for category in Category:
        if category.value.casefold() == value.strip().casefold() or category.name.casefold() == value.strip().casefold():
            return category.value
    raise UserError("Unknown category. Categories: {choices}.", choices=", ".join(c.value for c in Category))


@command("gpt", "browse", N_("Browse GPTs by category"),
         opt("category", N_("A category"), OptionType.CATEGORY, required=False))
async def browse(ctx: Ctx, category: str | None = None) -> None:
    await _browse_page(ctx, _category(category), 0, edit=False)


async def _browse_page(ctx: Ctx, category: str | None, page: int, *, edit: bool) -> None:
    async with ctx.db.lookups() as session:
        result = await catalog.browse(session, category=category, viewer=ctx.account_id, page=page, per_page=PER_PAGE,
                                      workspace=policy.workspace_id(ctx))
    title = ctx._("Browse: {category}", category=ctx._(category)) if category else ctx._("Browse all GPTs")
    picker = Select("browse-cat", ctx._("Pick a category"), tuple(Option(ctx._(c.value), c.value) for c in Category))
    await _listing(
        ctx, title, result.gpts, empty=N_("No GPTs here yet. Be the first: `/gpt create`."),
        actions=(*_pager(f"browse:{category or ''}", page, result.has_more, ctx), picker), edit=edit,
    )


@action("browse")
async def browse_page(ctx: Ctx, args: list[str]) -> None:
    if len(args) != 2 or not args[1].isdigit():
        raise UserError("This button is no longer available.")
    await _browse_page(ctx, _category(args[0]), int(args[1]), edit=True)


@action("browse-cat")
async def browse_category(ctx: Ctx, args: list[str]) -> None:
    chosen = ctx.action.values[0] if ctx.action and ctx.action.values else None
    await _browse_page(ctx, _category(chosen), 0, edit=True)


@command("gpt", "top", N_("The most engaged GPTs of the last 7 days"))
async def top(ctx: Ctx) -> None:
    async with ctx.db.lookups() as session:
        ranked = await catalog.top(session, viewer=ctx.account_id, limit=10, workspace=policy.workspace_id(ctx))
    extra = {gpt.id or 0: ctx._("{count} people this week", count=engaged) for gpt, engaged in ranked}
    await _listing(ctx, ctx._("Top GPTs this week"), [gpt for gpt, _ in ranked], extra=extra,
                   empty=N_("Nobody has used a GPT this week yet."), footer=ctx._(RANKING))


@command("gpt", "new", N_("New and rising GPTs"))
async def new(ctx: Ctx) -> None:
    async with ctx.db.lookups() as session:
        rising = await catalog.rising(session, limit=5, workspace=policy.workspace_id(ctx))
        newest = await catalog.newest(session, limit=5, workspace=policy.workspace_id(ctx))
    seen = {gpt.id for gpt, _ in rising}
    gpts = [gpt for gpt, _ in rising] + [gpt for gpt in newest if gpt.id not in seen]
    extra = {gpt.id or 0: ctx._("rising: {count} people this week", count=n) for gpt, n in rising}
    await _listing(ctx, ctx._("New and rising GPTs"), gpts, extra=extra,
                   empty=N_("No GPTs yet. Be the first: `/gpt create`."),
                   footer=ctx._("Rising: published in the last 30 days and already used by people this week."))


@command("gpt", "info", N_("Everything about one GPT"), opt("gpt", N_("The GPT"), OptionType.GPT))
async def info(ctx: Ctx, gpt: str) -> None:
    found = await resolve(ctx, gpt, purpose=policy.Purpose.SEE)
    async with ctx.db.lookups() as session:
        version = await get_version(session, found.current_version_id) if found.current_version_id else None
        engaged = await catalog.engaged_for(session, found.id or 0)
        source = await session.get(Gpt, found.remixed_from_id) if found.remixed_from_id else None
        remixes = await remixes_of(session, found.id or 0) if found.creator_id == ctx.account_id else []
    names = await names_for(ctx, {found.creator_id})
    card = gpt_card(ctx, found, version, names.get(found.creator_id, "?"), engaged=engaged,
                    remixed_from=source.name if source else None)
    if remixes:
        card = Card(card.title, card.description, (*card.fields, CardField(
            ctx._("Remixes of your GPT"), ", ".join(r.name for r in remixes[:10]), inline=False)), card.footer)
    if extra := await curation.info_fields(ctx, found):
        card = Card(card.title, card.description, (*card.fields, *extra), card.footer)
    rank = Button(ctx._("How is this ranked?"), f"rank:{found.id}")
    await ctx.send(Reply(card=card, actions=(*starter_buttons(found, version), rank)))


@action("rank")
async def explain_rank(ctx: Ctx, args: list[str]) -> None:
    async with ctx.db.lookups() as session:
        gpt = await session.get(Gpt, int(args[0])) if args and args[0].isdigit() else None
        engaged = await catalog.engaged_for(session, gpt.id or 0) if gpt else 0
    if gpt is None:
        raise UserError("This button is no longer available.")
    await policy.check(ctx, gpt, purpose=policy.Purpose.SEE)
    await ctx.say("{ranking}\n**{name}**: {engaged} people in the last 7 days; rating {rating}.",
                  ranking=ctx._(RANKING), name=gpt.name, engaged=engaged, rating=rating_text(ctx, gpt))


@command("gpt", "help", N_("How to use the GPT store"))
async def help_cmd(ctx: Ctx) -> None:
    lines = [f"`{spec.usage}` — {ctx._(spec.description)}" for spec in CATALOG if spec.group == "gpt"]
    text = "\n".join([ctx._("**GPT store**: find, use and build community GPTs."), *lines, "", ctx._(RANKING)])
    notice = ctx.services.extras.get("llm_notice")
    if notice:
        text += "\n\n" + ctx._(notice)
    await ctx.send(Reply(text=text, ephemeral=True))


@action("search-form")
async def search_form(ctx: Ctx, args: list[str]) -> None:
    from bot.replies import Form, FormField

    await ctx.send(Reply(form=Form("search-submit", ctx._("Search the GPT store"), (
        FormField("query", ctx._("Words to look for"), max_length=200),
    ))))


@action("search-submit")
async def search_submit(ctx: Ctx, args: list[str]) -> None:
    query = (ctx.action.form.get("query", "") if ctx.action else "").strip()
    if not query:
        raise UserError("Type a few words to search for.")
    await _search_page(ctx, query, 0, edit=False)
