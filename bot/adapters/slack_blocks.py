"""Block Kit views of the core's neutral replies: pure functions, no I/O.

Why pure: the outbox decides *where* a reply goes (a thread, a DM, a modal, the Home tab); these
functions only decide *how it looks*, so they are tested without Slack and shared by every surface.
Slack's limits are enforced here (3 000 characters per section, 50 blocks per message and 100 per
view, 75-character button labels, 150-character option values, 24-character modal titles), so that
a long GPT description is cut politely instead of turning into an `invalid_blocks` error.
The core writes Markdown (`**bold**`, `[text](url)`); Slack's `mrkdwn` is converted here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.catalog import CommandSpec, OptionType
from bot.i18n import N_
from bot.replies import Button, Card, Form, Reply, Select, Style

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
ELEMENTS_PER_ACTIONS = 25
FALLBACK_LIMIT = 3900
SKIPPED_ACTIONS = ("thread:",)  # Slack answers are already threaded: no "Continue in thread" button

Block = dict[str, Any]

_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.S)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)
_BOLD_MARK = "\x01"

# Labels this adapter translates at run time (extracted into the catalogues from here).
SLACK_TERMS = (N_("Type a GPT's name"), N_("Commands:"), N_("is thinking…"), N_("Submit"), N_("Cancel"))


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> str:
    """Markdown as the core and the models write it → Slack mrkdwn (code spans left alone)."""
    out: list[str] = []
    for index, part in enumerate(_CODE.split(text)):
        if index % 2:
            out.append(escape(part))
            continue
        part = escape(part)
        part = _LINK.sub(lambda m: f"<{m[2]}|{m[1]}>", part)
        part = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m[1]}{_BOLD_MARK}", part)
        part = _BULLET.sub(lambda m: f"{m[1]}• ", part)
        part = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m[1] or m[2]}{_BOLD_MARK}", part)
        part = _ITALIC.sub(r"_\1_", part)
        part = _STRIKE.sub(r"~\1~", part)
        out.append(part.replace(_BOLD_MARK, "*"))
    return "".join(out)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text or " ", limit), "emoji": True}


def chunks(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, split at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        at = text.rfind("\n", 0, limit)
        at = at if at > limit // 2 else limit
        pieces.append(text[:at])
        text = text[at:].lstrip("\n")
    if text.strip():
        pieces.append(text)
    return pieces


def text_sections(markdown: str) -> list[Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in chunks(mrkdwn(markdown))]


def card_blocks(card: Card) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": plain(card.title, 150)}]
    blocks += text_sections(card.description)
    inline: list[dict[str, str]] = []

    def flush() -> None:
        for start in range(0, len(inline), 10):
            blocks.append({"type": "section", "fields": inline[start : start + 10]})
        inline.clear()

    for item in card.fields:
        text = cut(f"*{mrkdwn(item.name)}*\n{mrkdwn(item.value or '—')}", FIELD_LIMIT)
        if item.inline:
            inline.append({"type": "mrkdwn", "text": text})
        else:
            flush()
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}})
    flush()
    if card.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(mrkdwn(card.footer), FIELD_LIMIT)}]})
    return blocks


def button(item: Button) -> Block:
    element: Block = {
        "type": "button", "text": plain(item.label, 75), "action_id": item.action_id[:255], "value": item.action_id[:2000],
    }
    if item.style in (Style.PRIMARY, Style.DANGER):
        element["style"] = item.style.value
    return element


def select(item: Select) -> Block | None:
    options = []
    for option in item.options[:100]:
        entry: Block = {"text": plain(option.label, 75), "value": option.value[:150]}
        if option.description:
            entry["description"] = plain(option.description, 75)
        options.append(entry)
    if not options:
        return None
    return {"type": "static_select", "action_id": item.action_id[:255], "placeholder": plain(item.placeholder, 150),
            "options": options}


def action_blocks(actions: Iterable[Button | Select], *, skip: Sequence[str] = SKIPPED_ACTIONS) -> list[Block]:
    elements: list[Block] = []
    seen: set[str] = set()
    for item in actions:
        if item.action_id.startswith(tuple(skip)) or item.action_id in seen:
            continue
        seen.add(item.action_id)
        element = button(item) if isinstance(item, Button) else select(item)
        if element is not None:
            elements.append(element)
    return [
        {"type": "actions", "elements": elements[start : start + ELEMENTS_PER_ACTIONS]}
        for start in range(0, len(elements), ELEMENTS_PER_ACTIONS)
    ]


def body_blocks(reply: Reply, *, text: str | None = None) -> list[Block]:
    """Text and cards of a reply (not its controls); `text` replaces `reply.text` when given."""
    blocks = text_sections(reply.text if text is None else text)
    for card in (reply.card, *reply.cards):
        if card is not None:
            if blocks:
                blocks.append({"type": "divider"})
            blocks += card_blocks(card)
    return blocks


def message_blocks(reply: Reply, *, text: str | None = None, limit: int = MESSAGE_BLOCKS) -> list[Block]:
    """Everything a message shows: text, cards, then its buttons and selects (kept when cut)."""
    controls = action_blocks(reply.actions)
    body = body_blocks(reply, text=text)
    room = limit - len(controls)
    if len(body) > room:
        body = body[: room - 1] + [{"type": "context", "elements": [{"type": "mrkdwn", "text": "…"}]}]
    return body + controls


def fallback_text(reply: Reply, *, text: str | None = None) -> str:
    """The notification text Slack shows where blocks cannot be (push, search, screen readers)."""
    parts = [reply.text if text is None else text]
    parts += [card.title for card in (reply.card, *reply.cards) if card is not None]
    return cut(mrkdwn("\n".join(p for p in parts if p).strip()), FALLBACK_LIMIT) or " "


def home_view(reply: Reply) -> Block:
    return {"type": "home", "blocks": message_blocks(reply, limit=VIEW_BLOCKS)}


def modal_view(form: Form, *, metadata: dict[str, Any], submit: str, close: str) -> Block:
    blocks = []
    for field in form.fields:
        element: Block = {
            "type": "plain_text_input", "action_id": "value", "multiline": field.long,
            "max_length": max(1, min(field.max_length, 3000)),
        }
        if field.value:
            element["initial_value"] = field.value[: element["max_length"]]
        blocks.append({"type": "input", "block_id": field.id[:255], "optional": not field.required,
                       "label": plain(field.label, 2000), "element": element})
    return _modal(form.action_id, form.title, blocks, metadata, submit, close)


def command_modal(
    spec: CommandSpec, *, tr: Callable[[str], str], prefill: dict[str, str], metadata: dict[str, Any],
    categories: Sequence[str], submit: str, close: str,
) -> Block:
    """A modal for a command typed without its options: the catalogue says what to ask for.

    GPT options are external selects answered by the core's autocomplete; small integer ranges
    (stars) are static selects; the rest are text inputs. Submitted as `cmd:<group>:<name>`.
    """
    blocks = []
    for option in spec.options:
        value = prefill.get(option.name, "")
        element: Block
        if option.type is OptionType.GPT:
            element = {"type": "external_select", "action_id": "value", "min_query_length": 0,
                       "placeholder": plain(tr("Type a GPT's name"))}
            if value:
                element["initial_option"] = {"text": plain(value, 75), "value": value[:150]}
        elif option.type is OptionType.INTEGER and option.min_value is not None and option.max_value is not None \
                and option.max_value - option.min_value < 20:
            numbers = [str(n) for n in range(option.min_value, option.max_value + 1)]
            element = {"type": "static_select", "action_id": "value", "placeholder": plain(tr(option.description)),
                       "options": [{"text": plain(n), "value": n} for n in numbers]}
            if value in numbers:
                element["initial_option"] = {"text": plain(value), "value": value}
        elif option.type is OptionType.CATEGORY:
            element = {"type": "static_select", "action_id": "value", "placeholder": plain(tr(option.description)),
                       "options": [{"text": plain(tr(c), 75), "value": c[:150]} for c in categories]}
        else:
            limit = min(option.max_length or 3000, 3000)
            element = {"type": "plain_text_input", "action_id": "value", "multiline": limit > 300, "max_length": limit}
            if value:
                element["initial_value"] = value[:limit]
        blocks.append({"type": "input", "block_id": option.name, "optional": not option.required,
                       "label": plain(tr(option.description), 2000), "element": element})
    return _modal(f"cmd:{spec.group}:{spec.name}", f"/{spec.group} {spec.name}", blocks, metadata, submit, close)


def _modal(callback: str, title: str, blocks: list[Block], metadata: dict[str, Any], submit: str, close: str) -> Block:
    return {
        "type": "modal", "callback_id": callback[:255], "title": plain(title, 24), "submit": plain(submit, 24),
        "close": plain(close, 24), "private_metadata": json.dumps(metadata, separators=(",", ":"))[:3000],
        "blocks": blocks[:VIEW_BLOCKS],
    }


def form_values(state_values: dict[str, Any]) -> dict[str, str]:
    """`view.state.values` → {block_id: the text typed or the option chosen}."""
    values: dict[str, str] = {}
    for block_id, elements in state_values.items():
        for element in elements.values():
            if not isinstance(element, dict):
                continue
            chosen = element.get("selected_option")
            if isinstance(chosen, dict):
                values[block_id] = str(chosen.get("value") or "")
            elif element.get("value") is not None:
                values[block_id] = str(element["value"])
            else:
                values.setdefault(block_id, "")
    return values


def suggested_prompts(actions: Iterable[Button | Select], *, limit: int = 4) -> list[dict[str, str]]:
    """The first select's options as assistant suggested prompts: a title, and the message it sends."""
    for item in actions:
        if isinstance(item, Select) and item.options:
            return [{"title": cut(o.label, 75), "message": o.value} for o in item.options[:limit]]
    return []
