"""How curation shows up on GPT cards: what a creator is told about their own GPTs (a takedown and
its reason, withheld extraction attempts), and what an admin sees of a GPT's standing here.

Why on cards rather than in a separate notice: the operator's CLI cannot reach a creator's DMs
(it runs without any platform connection), so a takedown's reason is shown wherever the creator
looks at the GPT: `/gpt mine`, `/gpt info`, and the refusal when they try to use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from bot import policy
from bot.context import Ctx
from bot.replies import CardField
from store import policy as rules
from store.models import Gpt, GptVersion


async def owner_notes(ctx: Ctx, gpts: list[Gpt]) -> dict[int, str]:
    """For the creator: ' · ⛔ taken down: …' and ' · 🔒 N extraction attempts withheld' per GPT."""
    ids = [gpt.id for gpt in gpts if gpt.id is not None and gpt.creator_id == ctx.account_id]
    async with ctx.db.reader() as session:
        leaks = await rules.leak_counts(session, ids)
    notes: dict[int, str] = {}
    for gpt in gpts:
        if gpt.id not in ids:
            continue
        parts = []
        if gpt.taken_down_at is not None:
            parts.append(ctx._("⛔ taken down by the operator: {reason}", reason=gpt.takedown_reason or "—"))
        if leaks.get(gpt.id or 0):
            parts.append(ctx._("🔒 {count} answers withheld for quoting its instructions", count=leaks[gpt.id or 0]))
        if parts:
            notes[gpt.id or 0] = " · " + " · ".join(parts)
    return notes


def ban_note(ctx: Ctx) -> str | None:
    if ctx.account.banned_at is None:
        return None
    return ctx._(policy.BANNED_OWN, reason=ctx.account.ban_reason or "—")


async def info_fields(ctx: Ctx, gpt: Gpt) -> tuple[CardField, ...]:
    fields: list[CardField] = []
    if gpt.creator_id == ctx.account_id:
        notes = await owner_notes(ctx, [gpt])
        if gpt.id in notes:
            fields.append(CardField(ctx._("Only you see this"), notes[gpt.id or 0].removeprefix(" · "), inline=False))
    ws = policy.workspace_id(ctx)
    if ctx.actor.is_admin and ws is not None:
        fields.append(CardField(ctx._("In this server"), await standing(ctx, ws, gpt), inline=False))
    return tuple(fields)


async def standing(ctx: Ctx, ws: int, gpt: Gpt) -> str:
    async with ctx.db.reader() as session:
        policy_row = await rules.get_policy(session, ws)
        entry = await rules.get_entry(session, ws, gpt.id or 0)
        approved = await session.get(GptVersion, entry.approved_version_id) if entry and entry.approved_version_id else None
    parts = []
    if entry and entry.blocked:
        parts.append(ctx._("blocked"))
    elif policy_row.mode == rules.Mode.ALLOWLIST:
        parts.append(ctx._("allowed") if entry and entry.allowed else ctx._("not on the allowlist"))
    else:
        parts.append(ctx._("open to members"))
    if entry and entry.featured:
        parts.append(ctx._("featured"))
    if policy_row.review_required:
        if approved is None:
            parts.append(ctx._("waiting for review"))
        elif approved.number < gpt.version_count:
            parts.append(ctx._("approved v{old}, v{new} waits for review", old=approved.number, new=gpt.version_count))
        else:
            parts.append(ctx._("approved v{version}", version=approved.number))
    return " · ".join(parts)


def word_changes(old: str, new: str, removed: Callable[[int], str], *, limit: int = 1000) -> str:
    """What changed, word by word: added words as `{+added+}`, removed ones only counted
    (`[-removed(n)-]`), `…` for what stayed.

    Why not a line diff with context: an admin must see the bait-and-switch (it is in what was
    added), not read the instructions; the rest, old words included, stays private to the creator.
    """
    a, b = old.split(), new.split()
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            if not out or out[-1] != "…":
                out.append("…")
            continue
        if i2 > i1:
            out.append("[-" + removed(i2 - i1) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    text = " ".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"
