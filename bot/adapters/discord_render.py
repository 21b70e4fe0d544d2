"""Core replies as Discord message parts: text chunks, embeds, a view of components, a modal.

Pure translation, no network: every Discord limit is applied here (2 000 characters a message,
the embed limits, 5 rows of components, 25 options, 45-character modal titles), so a reply the
core writes never becomes a 400 from Discord. Component custom ids are the core's action ids as
they are: the state is in the id, so a button on a week-old message still works after a restart.

Views and modals are returned *stopped*: discord.py keeps every unstopped view it sends in memory
to dispatch its callbacks, and ours have none (the adapter routes every component interaction to
the core by custom id), so a stopped view is only its serialised components.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import discord

from bot.replies import Button, Card, Form, Reply, Select, Style

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL = 6000
CUSTOM_ID_LIMIT = 100
THREAD_NAME_LIMIT = 100
COLOUR = discord.Colour(0x10A37F)

STYLES = {
    Style.PRIMARY: discord.ButtonStyle.primary,
    Style.SECONDARY: discord.ButtonStyle.secondary,
    Style.DANGER: discord.ButtonStyle.danger,
}


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Message-sized pieces, cut at a line break, else a space, else hard at the limit."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = cut_point(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


def cut_point(text: str, limit: int = TEXT_LIMIT) -> int:
    """Where to end a message of `text` (longer than `limit`): the last line break or space in the
    second half of the window, so a message never ends mid-word unless a word is that long."""
    window = text[:limit]
    for sep in ("\n", " "):
        at = window.rfind(sep)
        if at >= limit // 2:
            return at + 1
    return limit


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Budget:
    """Discord's 6 000 characters over all the embeds of one message."""

    def __init__(self, total: int = EMBED_TOTAL) -> None:
        self.left = total

    def take(self, text: str, limit: int) -> str:
        text = _clip(text, min(limit, max(self.left, 0)))
        self.left -= len(text)
        return text


def embed(card: Card, budget: _Budget | None = None) -> discord.Embed:
    budget = budget or _Budget()
    result = discord.Embed(
        title=budget.take(card.title, 256) or None,
        description=budget.take(card.description, 4096) or None,
        colour=COLOUR,
    )
    for field in card.fields[:25]:
        if budget.left < 20:
            break
        name = budget.take(field.name or "\u200b", 256) or "\u200b"
        value = budget.take(field.value or "—", 1024) or "—"
        result.add_field(name=name, value=value, inline=field.inline)
    if card.footer and budget.left > 0:
        result.set_footer(text=budget.take(card.footer, 2048))
    return result


def embeds(reply: Reply) -> list[discord.Embed]:
    cards = [c for c in (reply.card, *reply.cards) if c is not None][:EMBEDS_PER_MESSAGE]
    budget = _Budget()
    return [embed(card, budget) for card in cards]


def view(actions: Sequence[Button | Select]) -> discord.ui.View | None:
    """A persistent (timeout-less) view whose custom ids are the core's action ids; None if empty.

    Items Discord would refuse (an id over 100 characters, a second item with the same id, a select
    without options, a sixth row) are left out and logged: the rest of the reply still goes out."""
    if not actions:
        return None
    result = discord.ui.View(timeout=None)
    seen: set[str] = set()
    for action in actions:
        if len(action.action_id) > CUSTOM_ID_LIMIT or action.action_id in seen:
            log.warning("component left out: custom id too long or repeated: %r", action.action_id[:120])
            continue
        item: discord.ui.Item[Any]
        if isinstance(action, Button):
            item = discord.ui.Button(
                label=_clip(action.label, 80) or "…", custom_id=action.action_id, style=STYLES[action.style]
            )
        else:
            options = [
                discord.SelectOption(
                    label=_clip(o.label, 100) or o.value[:100], value=o.value[:100],
                    description=_clip(o.description, 100) or None,
                )
                for o in _unique_options(action.options)
            ][:25]
            if not options:
                continue
            item = discord.ui.Select(custom_id=action.action_id, placeholder=_clip(action.placeholder, 150), options=options)
        try:
            result.add_item(item)
        except ValueError:  # no room left in the five rows
            log.warning("component left out: no room for %r", action.action_id)
            continue
        seen.add(action.action_id)
    result.stop()
    return result if result.children else None


def _unique_options(options: Iterable[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for option in options:
        if option.value[:100] not in seen:
            seen.add(option.value[:100])
            out.append(option)
    return out


def modal(form: Form) -> discord.ui.Modal:
    """The form as a modal whose custom id is the form's action id and whose inputs are its fields."""
    result = discord.ui.Modal(title=_clip(form.title, 45) or "…", custom_id=form.action_id[:CUSTOM_ID_LIMIT], timeout=None)
    for field in form.fields[:5]:
        result.add_item(discord.ui.TextInput(
            label=_clip(field.label, 45) or field.id[:45], custom_id=field.id[:CUSTOM_ID_LIMIT],
            style=discord.TextStyle.paragraph if field.long else discord.TextStyle.short,
            required=field.required, max_length=max(1, min(field.max_length, 4000)),
            default=field.value[:4000] or None,
        ))
    result.stop()
    return result


def form_values(components: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A submitted modal's text inputs, `custom_id -> value`: in action rows (type 1) or in
    labels (type 18), the two layouts Discord uses."""
    values: dict[str, str] = {}

    def visit(component: Mapping[str, Any]) -> None:
        if component.get("type") == 1:
            for inner in component.get("components", []):
                visit(inner)
        elif component.get("type") == 18 and isinstance(component.get("component"), Mapping):
            visit(component["component"])
        elif "custom_id" in component and "value" in component:
            value = component["value"]
            values[str(component["custom_id"])] = value if isinstance(value, str) else ",".join(map(str, value))

    for component in components:
        visit(component)
    return values


def thread_name(name: str) -> str:
    """Thread names are 1 to 100 characters on one line."""
    flat = " ".join(name.split())
    return _clip(flat, THREAD_NAME_LIMIT) or "GPT"
