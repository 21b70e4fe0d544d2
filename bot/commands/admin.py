"""`/gpt-admin`: a server's admins decide which GPTs its members find and use, and where.

Every command is declared admin=True, so the core refuses anyone the platform does not call an
admin; the approval button checks again (buttons are not commands). Each change is one atomic
update plus an audit row in the same transaction (store/policy.py), so two admins changing the
policy at the same moment both see their change kept, and `/gpt-admin log` says who did what.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import policy
from bot.catalog import OptionType, action, command, opt
from bot.commands.curation import word_changes
from bot.commands.invoke import resolve
from bot.context import Ctx
from bot.errors import UserError
from bot.i18n import N_
from bot.replies import Button, Card, CardField, Reply, Style
from store import policy as rules
from store.gpts import get_version
from store.models import Gpt, GptVersion, utcnow

G = "gpt-admin"
MODES = {rules.Mode.OPEN.value: N_("open"), rules.Mode.ALLOWLIST.value: N_("allowlist")}
GPT_OPTION = opt("gpt", N_("The GPT"), OptionType.GPT)


def _workspace(ctx: Ctx) -> int:
    ws = policy.workspace_id(ctx)
    if ws is None:
        raise UserError("Run `/gpt-admin` in your server, not in a direct message.")
    return ws


async def _change(ctx: Ctx, action_name: str, target: str, work: Callable[[AsyncSession, int], Awaitable[Any]],
                  detail: str = "") -> None:
    ws = _workspace(ctx)
    async with ctx.db.session() as session:
        await work(session, ws)
        rules.audit(session, workspace_id=ws, actor_id=ctx.account_id, actor_name=ctx.account.display_name,
                    action=action_name, target=target, detail=detail)


async def _gpt(ctx: Ctx, ref: str) -> Gpt:
    """Any GPT the admin may see at all (blocked or not allowed here included)."""
    return await resolve(ctx, ref, purpose=None)


@command(G, "mode", N_("open: every public GPT except blocked ones; allowlist: only the ones you allow"),
         opt("mode", N_("open or allowlist"), max_length=20), admin=True)
async def mode(ctx: Ctx, mode: str) -> None:
    chosen = mode.strip().lower()
    if chosen not in (rules.Mode.OPEN, rules.Mode.ALLOWLIST):
        raise UserError("Choose `open` or `allowlist`.")
    await _change(ctx, "mode", "mode", lambda s, ws: rules.set_policy(s, ws, mode=chosen), chosen)
    if chosen == rules.Mode.ALLOWLIST:
        await ctx.say("Allowlist mode: members now find and use only the GPTs you allow with `/gpt-admin allow`.")
    else:
        await ctx.say("Open mode: members find and use every public GPT except the ones you block.")


@command(G, "allow", N_("Allow a GPT in this server (it also lifts a block)"), GPT_OPTION, admin=True)
async def allow(ctx: Ctx, gpt: str) -> None:
    found = await _gpt(ctx, gpt)
    await _change(ctx, "allow", found.slug, lambda s, ws: rules.set_entry(s, ws, found.id or 0, allowed=True, blocked=False))
    await ctx.say("“{name}” is allowed here.", name=found.name)


@command(G, "block", N_("Block a GPT in this server: members can no longer find or use it"), GPT_OPTION, admin=True)
async def block(ctx: Ctx, gpt: str) -> None:
    found = await _gpt(ctx, gpt)
    await _change(ctx, "block", found.slug, lambda s, ws: rules.set_entry(
        s, ws, found.id or 0, blocked=True, allowed=False, featured=False))
    await ctx.say("“{name}” is blocked here: members can no longer find or use it, in threads either.", name=found.name)


@command(G, "unblock", N_("Lift a block"), GPT_OPTION, admin=True)
async def unblock(ctx: Ctx, gpt: str) -> None:
    found = await _gpt(ctx, gpt)
    await _change(ctx, "unblock", found.slug, lambda s, ws: rules.set_entry(s, ws, found.id or 0, blocked=False))
    await ctx.say("“{name}” is no longer blocked here.", name=found.name)


@command(G, "feature", N_("Feature a GPT: it comes first in browse, top and the home tab"), GPT_OPTION, admin=True)
async def feature(ctx: Ctx, gpt: str) -> None:
    found = await _gpt(ctx, gpt)
    await _change(ctx, "feature", found.slug, lambda s, ws: rules.set_entry(
        s, ws, found.id or 0, featured=True, allowed=True, blocked=False))
    await ctx.say("“{name}” is featured here (and allowed): it comes first in browse, top and the home tab.", name=found.name)


@command(G, "unfeature", N_("Stop featuring a GPT"), GPT_OPTION, admin=True)
async def unfeature(ctx: Ctx, gpt: str) -> None:
    found = await _gpt(ctx, gpt)
    await _change(ctx, "unfeature", found.slug, lambda s, ws: rules.set_entry(s, ws, found.id or 0, featured=False))
    await ctx.say("“{name}” is no longer featured here.", name=found.name)


def channel_refs(ctx: Ctx, raw: str) -> list[str]:
    """`#general, <#123>, <#C01|help>, here` → the channel ids the platform uses."""
    refs: list[str] = []
    for token in re.split(r"[\s,]+", raw.strip()):
        if not token:
            continue
        if token.lower() == "here":
            ref = ctx.place.channel_id
        else:
            mention = re.fullmatch(r"<#([A-Za-z0-9_-]+)(?:\|[^>]*)?>", token)
            ref = mention.group(1) if mention else token.lstrip("#")
        if ref and ref[:64] not in refs:
            refs.append(ref[:64])
    return refs


@command(G, "channels", N_("Where GPTs answer: channels (or `here`), or `all`; nothing shows the current list"),
         opt("channels", N_("Channels, or all"), required=False, max_length=1000), admin=True)
async def channels(ctx: Ctx, channels: str | None = None) -> None:
    ws = _workspace(ctx)
    if not channels:
        async with ctx.db.reader() as session:
            current = await rules.answering_channels(session, ws)
        await ctx.say("GPTs answer in: {channels}.", channels=_channel_list(ctx, current))
        return
    refs = [] if channels.strip().lower() == "all" else channel_refs(ctx, channels)
    await _change(ctx, "channels", "channels", lambda s, w: rules.limit_channels(s, w, refs), " ".join(refs) or "all")
    await ctx.say("GPTs answer in: {channels}.", channels=_channel_list(ctx, refs))


def _channel_list(ctx: Ctx, refs: list[str]) -> str:
    return ", ".join(policy.channel_mention(ctx, r) for r in refs) if refs else ctx._("every channel")


@command(G, "channel-gpt", N_("This channel's default GPT: mentioning the bot here talks to it (`none` removes it)"),
         GPT_OPTION, admin=True)
async def channel_gpt(ctx: Ctx, gpt: str) -> None:
    _workspace(ctx)
    if ctx.place.is_dm:
        raise UserError("Run `/gpt-admin` in your server, not in a direct message.")
    channel = ctx.place.channel_id
    where = policy.channel_mention(ctx, channel)
    if gpt.strip().lower() == "none":
        await _change(ctx, "channel-gpt", "channels", lambda s, ws: rules.set_channel(s, ws, channel, default_gpt_id=None),
                      f"{channel}: none")
        await ctx.say("{channel} has no default GPT any more.", channel=where)
        return
    found = await _gpt(ctx, gpt)
    await policy.check(ctx, found)  # a default that members could not use would only refuse them
    await _change(ctx, "channel-gpt", "channels", lambda s, ws: rules.set_channel(s, ws, channel, default_gpt_id=found.id),
                  f"{channel}: {found.slug}")
    await ctx.say("Mentioning me in {channel} now talks to “{name}”.", channel=where, name=found.name)


@command(G, "review", N_("on: GPTs need an admin's approval (again after each edit) before members use them here"),
         opt("state", N_("on or off"), max_length=5), admin=True)
async def review(ctx: Ctx, state: str) -> None:
    on = state.strip().lower()
    if on not in ("on", "off"):
        raise UserError("Choose `on` or `off`.")
    await _change(ctx, "review", "review", lambda s, ws: rules.set_policy(s, ws, review_required=on == "on"), on)
    if on == "on":
        await ctx.say("Review is on: members use a GPT here only once an admin approved it with `/gpt-admin approve`, and again after each edit. Admins can try GPTs before approving them.")
    else:
        await ctx.say("Review is off.")


@command(G, "approve", N_("Review a GPT, and what changed since you approved it, then approve it here"),
         GPT_OPTION, admin=True)
async def approve(ctx: Ctx, gpt: str) -> None:
    ws = _workspace(ctx)
    found = await _gpt(ctx, gpt)
    async with ctx.db.reader() as session:
        current = await get_version(session, found.current_version_id or 0)
        entry = await rules.get_entry(session, ws, found.id or 0)
        before = await session.get(GptVersion, entry.approved_version_id) if entry and entry.approved_version_id else None
    if before is not None and before.id == current.id:
        await ctx.say("Version {version} of “{name}” is already approved here.", version=current.number, name=found.name)
        return
    await ctx.send(Reply(card=_review_card(ctx, found, before, current), ephemeral=True, actions=(
        Button(ctx._("Approve version {version}", version=current.number), f"gpta-approve:{found.id}:{current.id}",
               Style.PRIMARY),
    )))


def _review_card(ctx: Ctx, gpt: Gpt, before: GptVersion | None, current: GptVersion) -> Card:
    fields: list[CardField] = []
    if before is None:
        fields += [
            CardField(ctx._("Description"), current.description or "—", inline=False),
            CardField(ctx._("Conversation starters"), "\n".join(current.starters) or "—", inline=False),
            CardField(ctx._("Model"), current.model),
            CardField(ctx._("Instructions"), ctx._(
                "Private to its creator ({count} characters). Try it first: admins can use it here before approving.",
                count=len(current.instructions)), inline=False),
        ]
        title = ctx._("Review “{name}” (version {version})", name=gpt.name, version=current.number)
    else:
        for label, old, new in (
            (N_("Name"), before.name, current.name), (N_("Description"), before.description, current.description),
            (N_("Conversation starters"), "\n".join(before.starters), "\n".join(current.starters)),
            (N_("Model"), before.model, current.model), (N_("Category"), before.category, current.category),
        ):
            if old != new:
                fields.append(CardField(ctx._(label), f"{old or '—'}\n→ {new or '—'}"[:1000], inline=False))
        changes = word_changes(before.instructions, current.instructions,
                               lambda n: ctx._("{count} word(s) removed", count=n))
        fields.append(CardField(ctx._("Instructions: what changed"), changes if changes.strip("… ") else ctx._("nothing"),
                                inline=False))
        title = ctx._("“{name}”: version {old} (approved) → version {new}", name=gpt.name, old=before.number,
                      new=current.number)
    return Card(title=title, fields=tuple(fields), footer=ctx._("Only added words are shown; the rest stays private to the creator."))


@action("gpta-approve")
async def approve_button(ctx: Ctx, args: list[str]) -> None:
    if not ctx.actor.is_admin:
        raise UserError("Only this server's admins can use `/{group} {name}`.", group=G, name="approve")
    if len(args) != 2 or not all(a.isdigit() for a in args):
        raise UserError("This button is no longer available.")
    gpt_id, version_id = int(args[0]), int(args[1])
    async with ctx.db.reader() as session:
        gpt = await session.get(Gpt, gpt_id)
        version = await session.get(GptVersion, version_id)
    if gpt is None or version is None or version.gpt_id != gpt_id:
        raise UserError("This button is no longer available.")
    await _change(ctx, "approve", gpt.slug, lambda s, ws: rules.set_entry(
        s, ws, gpt_id, approved_version_id=version_id, allowed=True, requested_at=None), f"v{version.number}")
    if gpt.current_version_id != version_id:
        await ctx.say("Approved version {version} of “{name}”; its creator published a newer one since, which waits for review.",
                      version=version.number, name=gpt.name)
    else:
        await ctx.say("Approved version {version} of “{name}”: members can use it here.", version=version.number, name=gpt.name)


@command(G, "quota", N_("Daily questions per member, or for the whole server (0: no limit)"),
         opt("scope", N_("member or server"), max_length=10),
         opt("limit", N_("Questions a day, 0 for no limit"), OptionType.INTEGER, min_value=0, max_value=1_000_000),
         admin=True)
async def quota(ctx: Ctx, scope: str, limit: int) -> None:
    which = scope.strip().lower()
    if which not in ("member", "server"):
        raise UserError("Choose `member` or `server`.")
    value = limit or None
    field = "member_daily_quota" if which == "member" else "workspace_daily_quota"
    await _change(ctx, "quota", "quota", lambda s, ws: rules.set_policy(s, ws, **{field: value}), f"{which} {limit}")
    if value is None:
        await ctx.say("No daily limit for {scope} any more.", scope=ctx._(_SCOPES[which]))
    else:
        await ctx.say("Daily limit for {scope}: {limit} questions (it resets at midnight UTC).",
                      scope=ctx._(_SCOPES[which]), limit=value)


_SCOPES = {"member": N_("each member"), "server": N_("the whole server")}


@command(G, "policy", N_("Everything this server decided about GPTs"), admin=True)
async def show_policy(ctx: Ctx) -> None:
    ws = _workspace(ctx)
    today = utcnow().date()
    async with ctx.db.reader() as session:
        p = await rules.get_policy(session, ws)
        decided = await rules.entries(session, ws)
        chans = await rules.channel_rules(session, ws)
        used = await rules.quota_used(session, ws, "workspace", today)
        defaults = {r.channel_ref: await session.get(Gpt, r.default_gpt_id) for r in chans if r.default_gpt_id}
    def names(test: Callable[[rules.WorkspaceGpt], bool]) -> str:
        return ", ".join(f"{g.name} (`{g.slug}`)" for e, g in decided if test(e)) or "—"

    quota_text = ctx._("{member} per member · {server} for the server ({used} used today)",
                       member=p.member_daily_quota or ctx._("no limit"), server=p.workspace_daily_quota or ctx._("no limit"),
                       used=used)
    fields = [
        CardField(ctx._("Mode"), ctx._(MODES.get(p.mode, p.mode))),
        CardField(ctx._("Review"), ctx._("on") if p.review_required else ctx._("off")),
        CardField(ctx._("Daily quotas"), quota_text, inline=False),
        CardField(ctx._("Channels where GPTs answer"), _channel_list(ctx, [r.channel_ref for r in chans if r.answers]), inline=False),
        CardField(ctx._("Channel default GPTs"), ", ".join(
            f"{policy.channel_mention(ctx, ref)} → {g.name}" for ref, g in defaults.items() if g) or "—", inline=False),
        CardField(ctx._("Allowed"), names(lambda e: e.allowed and not e.blocked), inline=False),
        CardField(ctx._("Blocked"), names(lambda e: e.blocked), inline=False),
        CardField(ctx._("Featured"), names(lambda e: e.featured), inline=False),
    ]
    if p.review_required:
        waiting = ", ".join(g.name for e, g in decided if e.requested_at is not None and e.approved_version_id != g.current_version_id)
        fields.append(CardField(ctx._("Members are waiting for"), waiting or "—", inline=False))
    await ctx.send(Reply(card=Card(ctx._("GPT rules of this server"), fields=tuple(fields),
                                   footer=ctx._("Policy version {version}. `/gpt-admin log` shows who changed what.", version=p.version)),
                         ephemeral=True))


@command(G, "log", N_("Who changed this server's GPT rules, and when"), admin=True)
async def log(ctx: Ctx) -> None:
    ws = _workspace(ctx)
    async with ctx.db.reader() as session:
        entries = await rules.audit_log(session, ws, limit=25)
    if not entries:
        await ctx.say("Nothing has been changed here yet.")
        return
    lines = [f"`{e.created_at:%Y-%m-%d %H:%M}` **{e.actor_name}** {e.action}"
             + (f" {e.target}" if e.target != e.action else "") + (f" — {e.detail}" if e.detail else "")
             for e in entries]
    await ctx.send(Reply(card=Card(ctx._("Changes to this server's GPT rules"), "\n".join(lines)), ephemeral=True))
