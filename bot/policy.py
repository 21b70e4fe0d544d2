"""Who may reach which GPT, where: the one gate every path goes through.

Why one module: a rule checked in one command and forgotten in another is no rule. Listings
filter in SQL (store/policy.catalog_filter, used by store/search.py); everything that reaches a
single GPT (info, ask, use, a thread, a DM, a starter, regenerate, a handoff, a channel's default
GPT, remix) calls `require`, and every answer first passes `before_answer` (the gate again, rate
limits, daily quotas, the moderation check) and streams through `GuardedAnswer` (the leak guard).
Everything is read from the database on each request, so an admin's change or an operator's
takedown holds on the next request on every replica.

A refusal says why and, for a member, who can change it (this server's admins, naming the last
one who touched that rule); an admin is told the command that changes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

from bot.errors import UserError
from bot.i18n import N_
from bot.leakguard import LeakGuard
from bot.llm import LLMError, Usage
from store import policy as rules
from store.gpts import can_see
from store.models import Gpt, GptStatus, GptVersion, utcnow
from store.ratelimit import Bucket, Limiter, make_limiter

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.context import Ctx, Services
    from store.models import Conversation, Invocation
    from store.statements import Statements

log = logging.getLogger(__name__)

GONE = N_("“{name}” is no longer available.")
TAKEN_DOWN_OWN = N_("“{name}” was taken down by the store's operator: {reason}")
BANNED_OWN = N_("Your account was suspended by the store's operator: {reason}")
BLOCKED = N_("“{name}” is blocked in this server.")
NOT_ALLOWED = N_("This server only allows GPTs its admins picked, and “{name}” is not one of them.")
PENDING = N_("“{name}” is waiting for this server's admins to approve it.")
CHANGED = N_("“{name}” changed since this server's admins approved it, and waits for their approval again.")
CHANNEL = N_("GPTs do not answer in this channel. They answer in: {channels}.")
MEMBER_QUOTA = N_("You reached this server's daily limit of {limit} questions. It resets at midnight UTC.")
SERVER_QUOTA = N_("This server reached its daily limit of {limit} questions. It resets at midnight UTC.")
TOO_FAST = N_("You are sending questions too fast. Please wait {seconds} seconds.")
SERVER_TOO_FAST = N_("This server is sending too many questions right now. Please wait {seconds} seconds.")
FLAGGED = N_("Your message was not sent to the GPT: the safety check flagged {categories}.")
SAFETY_DOWN = N_("The safety check is unavailable right now, so I cannot send your message. Please try again shortly.")
WITHHELD = N_("The rest of this answer was withheld because it quoted this GPT's private instructions. Ask something else!")
ASK_ADMINS = N_("This server's admins decide this with `/gpt-admin`.")
LAST_CHANGE = N_("Last change by {who} on {when}.")
FIX = {
    BLOCKED: N_("You can lift the block with `/gpt-admin unblock {slug}`."),
    NOT_ALLOWED: N_("You can allow it with `/gpt-admin allow {slug}`."),
    CHANNEL: N_("You can change this with `/gpt-admin channels`."),
    MEMBER_QUOTA: N_("You can change it with `/gpt-admin quota member <number>`."),
    SERVER_QUOTA: N_("You can change it with `/gpt-admin quota server <number>`."),
}


class Purpose(StrEnum):
    SEE = "see"  # its card (info, rate, report): admins and the creator may look at what members may not
    USE = "use"  # talk to it


@dataclass(frozen=True, slots=True)
class Where:
    """The workspace whose rules apply, and the channel (None in a DM: channel rules do not apply)."""

    workspace_id: int | None
    channel_ref: str | None


def here(ctx: Ctx) -> Where:
    return Where(ctx.workspace.id if ctx.workspace else None, None if ctx.place.is_dm else ctx.place.channel_id)


def of_conversation(ctx: Ctx, conversation: Conversation) -> Where:
    """A conversation obeys the workspace it started in, wherever it goes on (a thread, a DM)."""
    if conversation.id is None:
        return here(ctx)
    workspace = conversation.workspace_id if conversation.workspace_id is not None else here(ctx).workspace_id
    channel = None if conversation.kind == "dm" or ctx.place.is_dm else conversation.channel_ref
    return Where(workspace, channel)


def workspace_id(ctx: Ctx) -> int | None:
    return ctx.workspace.id if ctx.workspace else None


def channel_mention(ctx: Ctx, ref: str) -> str:
    return f"#{ref}" if ctx.actor.platform == "console" else f"<#{ref}>"


# --- the gate ----------------------------------------------------------------------------------

async def require(
    ctx: Ctx, session: AsyncSession | Statements, gpt: Gpt, *, where: Where, purpose: Purpose = Purpose.USE,
    version: GptVersion | None = None, standing: rules.Standing | None = None,
) -> rules.Standing:
    """Raise a UserError saying why, unless this person may see or use this GPT here.

    One query reads the creator's ban and the workspace's rules; more are read only to explain
    a refusal. A passed USE check is remembered on the request (`ctx`), so the answer that
    follows in the same request does not read it all again.
    """
    creator = gpt.creator_id == ctx.account_id
    if gpt.status == GptStatus.DELETED:
        raise UserError(GONE, name=gpt.name)
    if gpt.taken_down_at is not None:
        if creator:
            raise UserError(TAKEN_DOWN_OWN, name=gpt.name, reason=gpt.takedown_reason or "—")
        raise UserError(GONE, name=gpt.name)
    st = standing or await rules.standing(session, gpt, workspace_id=where.workspace_id, channel_ref=where.channel_ref)
    if st.creator_banned:
        if creator:
            raise UserError(BANNED_OWN, reason=st.ban_reason or "—")
        raise UserError(GONE, name=gpt.name)
    if not can_see(gpt, ctx.account_id, by_slug=True):
        raise UserError(GONE, name=gpt.name)
    if where.workspace_id is None or (purpose is Purpose.SEE and (creator or ctx.actor.is_admin)):
        return st
    ws = where.workspace_id
    if st.blocked:
        await refuse(ctx, ws, BLOCKED, (gpt.slug,), name=gpt.name, slug=gpt.slug)
    if st.mode == rules.Mode.ALLOWLIST and not st.allowed:
        await refuse(ctx, ws, NOT_ALLOWED, (gpt.slug, "mode"), name=gpt.name, slug=gpt.slug)
    if st.review_required and not ctx.actor.is_admin:
        wanted = version.number if version is not None else gpt.version_count
        if st.approved_number is None or st.approved_number < wanted:
            async with ctx.db.session() as writer:  # so that admins see it in their queue
                await rules.mark_requested(writer, ws, gpt.id or 0)
            await refuse(ctx, ws, CHANGED if st.approved_number else PENDING, (gpt.slug, "review"),
                         name=gpt.name)
    if purpose is Purpose.USE and where.channel_ref and st.channels_limited and not st.channel_listed:
        async with ctx.db.lookups() as reader:
            shown = ", ".join(channel_mention(ctx, c) for c in await rules.answering_channels(reader, ws))
        await refuse(ctx, ws, CHANNEL, ("channels",), channels=shown)
    if purpose is Purpose.USE and version is None:
        ctx.memo["policy_passed"] = (gpt.id, gpt.current_version_id, where, st)
    return st


async def refuse(ctx: Ctx, ws: int, reason: str, targets: tuple[str, ...], **params: Any) -> NoReturn:
    """A UserError saying why, and who can change it (and when it last changed) for the others."""
    fix = FIX.get(reason)
    if ctx.actor.is_admin and fix:
        remedy = ctx._(fix, **params)
    else:
        remedy = ctx._(ASK_ADMINS)
        async with ctx.db.lookups() as session:
            last = await rules.last_change(session, ws, *targets)
        if last is not None:
            remedy += " " + ctx._(LAST_CHANGE, who=last.actor_name, when=last.created_at.strftime("%Y-%m-%d"))
    raise UserError("{reason} {remedy}", reason=ctx._(reason, **params), remedy=remedy)


async def check(ctx: Ctx, gpt: Gpt, *, purpose: Purpose = Purpose.USE, where: Where | None = None) -> None:
    async with ctx.db.lookups() as session:
        await require(ctx, session, gpt, where=where or here(ctx), purpose=purpose)


async def channel_default(ctx: Ctx) -> Gpt | None:
    """The GPT an admin made this channel's default, if any (mentioning the bot here talks to it)."""
    ws = workspace_id(ctx)
    if ws is None or ctx.place.is_dm:
        return None
    async with ctx.db.lookups() as session:
        gpt_id = await rules.channel_default(session, ws, ctx.place.channel_id)
        return await session.get(Gpt, gpt_id) if gpt_id else None


# --- before an answer: the gate, rate limits, quotas, moderation ------------------------------

def limiter(services: Services) -> Limiter:
    """One limiter per process, built from the settings (Redis when GPTSTORE_REDIS_URL is set)."""
    found = services.extras.get("limiter")
    if found is None:
        url = services.settings.redis_url
        found = services.extras["limiter"] = make_limiter(services.db, url.get_secret_value() if url else None)
    return found  # type: ignore[no-any-return]


async def before_answer(ctx: Ctx, conversation: Conversation, prompt: str, *, regenerate: bool) -> None:
    where = of_conversation(ctx, conversation)
    passed = ctx.memo.get("policy_passed")
    if conversation.id is None and passed and passed[:3] == (conversation.gpt_id, conversation.version_id, where):
        st = passed[3]  # this request's own check, a moment ago (a new conversation on the current version)
    else:
        async with ctx.db.lookups() as session:  # reads only (a review request is written on its own)
            gpt = await session.get(Gpt, conversation.gpt_id, populate_existing=True)
            version = await session.get(GptVersion, conversation.version_id)
            if gpt is None:
                raise UserError("This conversation no longer exists.")
            st = await require(ctx, session, gpt, where=where, version=version)
    await admit(ctx, where, st)
    if not regenerate:
        await moderate_prompt(ctx, prompt)


async def admit(ctx: Ctx, where: Where, st: rules.Standing) -> None:
    """Take a token from the member's and the workspace's buckets, then count the daily quotas."""
    settings = ctx.settings
    ws = where.workspace_id
    wanted = []
    if settings.rate_member_per_minute:
        per_minute = settings.rate_member_per_minute
        wanted.append((TOO_FAST, Bucket(f"member:{ctx.account_id}", per_minute, per_minute / 60)))
    if ws is not None and settings.rate_workspace_per_minute:
        per_minute = settings.rate_workspace_per_minute
        wanted.append((SERVER_TOO_FAST, Bucket(f"workspace:{ws}", per_minute, per_minute / 60)))
    refused = await limiter(ctx.services).take_each([bucket for _, bucket in wanted]) if wanted else None
    if refused is not None:
        index, decision = refused
        raise UserError(wanted[index][0], seconds=max(1, math.ceil(decision.retry_after)))
    if ws is None:
        return
    member, server = st.member_quota, st.workspace_quota
    if member is None and server is None:
        return
    async with ctx.db.session() as session:
        today = utcnow().date()
        if member is not None and not await rules.consume_quota(session, ws, f"member:{ctx.account_id}", today, member):
            await refuse(ctx, ws, MEMBER_QUOTA, ("quota",), limit=member)
        if server is not None and not await rules.consume_quota(session, ws, "workspace", today, server):
            await refuse(ctx, ws, SERVER_QUOTA, ("quota",), limit=server)


async def moderate_prompt(ctx: Ctx, prompt: str) -> None:
    """The moderation endpoint sees the prompt before the model does (when moderation is on)."""
    if not ctx.settings.moderation_enabled:
        return
    try:
        flagged = await ctx.services.llm.moderate(prompt)
    except LLMError:
        raise UserError(SAFETY_DOWN) from None
    if flagged:
        raise UserError(FLAGGED, categories=", ".join(flagged))


# --- while it streams: the leak guard ----------------------------------------------------------

class GuardedAnswer:
    """The model's stream, passed through the leak guard (not for the GPT's own creator).

    What a person sees when an answer quotes the instructions: the text before the quoted run
    (the run itself is never shown), then a new paragraph "🔒 The rest of this answer was withheld
    …". The model's stream is closed at once; the use is recorded as blocked (it earns nothing),
    a LeakAttempt is counted for the creator, and the conversation keeps only what was shown.
    `blocked` tells the caller why the use must not count ('leak_guard'). A GPT taken down while
    it answered is caught where the use is completed, in the same statement (billing.tracking.finish).
    """

    def __init__(
        self, ctx: Ctx, gpt: Gpt, version: GptVersion, invocation: Invocation,
        source: AsyncIterator[str | Usage],
    ) -> None:
        self.ctx, self.gpt, self.invocation, self.source = ctx, gpt, invocation, source
        self.blocked: str | None = None
        self.guard = LeakGuard(version.instructions) if gpt.creator_id != ctx.account_id else None
        self._run = self._guarded()

    def __aiter__(self) -> AsyncGenerator[str | Usage, None]:
        return self._run

    async def aclose(self) -> None:
        await self._run.aclose()
        await self._close_source()

    async def _close_source(self) -> None:
        closer = getattr(self.source, "aclose", None)  # the gateway's stream is an async generator
        if closer is not None:
            await closer()

    async def _guarded(self) -> AsyncGenerator[str | Usage, None]:
        guard = self.guard
        async for item in self.source:
            if isinstance(item, Usage) or guard is None:
                if isinstance(item, Usage) and guard is not None and (tail := guard.flush()):
                    yield tail
                yield item
                continue
            safe = guard.feed(item)
            if safe:
                yield safe
            if guard.leaked:
                self.blocked = "leak_guard"
                await self._close_source()
                await self._count_leak()
                yield ("\n\n" if guard.shown.strip() else "") + "🔒 " + self.ctx._(WITHHELD)
                return
        if guard is not None and (tail := guard.flush()):
            yield tail

    async def _count_leak(self) -> None:
        log.warning("answer withheld: it quoted the instructions of gpt %s", self.gpt.id)
        async with self.ctx.db.session() as session:
            await rules.record_leak(session, gpt_id=self.gpt.id or 0, account_id=self.ctx.account_id,
                                    workspace_id=workspace_id(self.ctx), invocation_id=self.invocation.id)
