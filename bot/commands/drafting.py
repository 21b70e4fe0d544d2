"""Drafting a GPT from the creator's own words, with whatever model the store has.

A capable model writes the whole draft as one JSON object; a small local one cannot, so it is
asked one plain question per field. Either way the result passes the same rules as typed input
(builder.from_llm_draft), and without a usable draft the builder goes field by field.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.commands import builder
from bot.commands.builder import State
from bot.context import Ctx
from bot.i18n import N_
from bot.llm import LLMError

log = logging.getLogger(__name__)

DRAFT_PROMPT = (
    "[[draft]] You help people build a custom GPT for a community store. From the creator's idea, "
    "reply with one JSON object with keys: name (3-40 characters, catchy, no markdown), description "
    "(one sentence, at most 300 characters), instructions (a system prompt of 3-8 sentences, "
    "second person, at most 2000 characters), starters (a list of up to 4 short questions a user "
    "might ask, each at most 100 characters), category (one of: " + ", ".join(builder.CATEGORIES) + ")."
)


async def draft(ctx: Ctx, data: dict[str, Any], models: list[str]) -> tuple[State, dict[str, Any], list[builder.Note]]:
    try:
        raw, _ = await ctx.services.llm.complete(
            model=None, json_mode=True,
            messages=[{"role": "system", "content": DRAFT_PROMPT}, {"role": "user", "content": data.get("idea", "")}],
        )
        drafted = builder.from_llm_draft(json.loads(raw), models)
    except (LLMError, ValueError, TypeError) as exc:
        log.warning("drafting failed: %s", exc)
        drafted = {}
    if not drafted.get("name") or not drafted.get("instructions"):
        drafted = {**await _field_by_field(ctx, data.get("idea", ""), models), **drafted}
    if not drafted.get("name") or not drafted.get("instructions"):
        return State.NAME, data, [builder.Note(N_("I could not draft it automatically; let's go field by field."))]
    return State.REVIEW, {**data, **drafted}, [builder.Note(N_("Here is a draft. Keep it, change a field, or redraft."))]


FIELD_PROMPTS = {
    "name": "Reply with only a short, catchy name (2 to 4 words) for an AI assistant that does this:",
    "description": "Reply with only one sentence describing, for a store listing, an AI assistant that does this:",
    "instructions": "Write the instructions for an AI assistant that does what follows. Start with 'You are'. "
                    "Three to six sentences, second person:",
}


async def _field_by_field(ctx: Ctx, idea: str, models: list[str]) -> dict[str, Any]:
    """Small local models cannot write the JSON draft; one plain question per field they can."""
    raw: dict[str, Any] = {}
    for field_name, prompt in FIELD_PROMPTS.items():
        try:
            text, _ = await ctx.services.llm.complete(
                model=None, max_tokens=200,
                messages=[{"role": "system", "content": "You help people build custom AI assistants."},
                          {"role": "user", "content": f"{prompt}\n\n{idea}"}],
            )
        except LLMError as exc:
            log.warning("drafting %s failed: %s", field_name, exc)
            return {}
        text = text.strip()
        if field_name == "name":
            text = text.splitlines()[0] if text else ""
            text = text.strip(" \"'*#.:").removeprefix("Name").strip(" :")
        raw[field_name] = text
    raw["category"] = "Other"
    return builder.from_llm_draft(raw, models)
