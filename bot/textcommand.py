"""Parse `/gpt ask tutor "what is x?"`-style text against the catalogue.

Used wherever commands arrive as text (Slack's `/gpt <subcommand> …`, the console): the last
string option takes the rest of the line, so prompts need no quotes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bot.catalog import COMMANDS, CommandSpec, OptionType
from bot.errors import UserError


@dataclass(frozen=True, slots=True)
class Parsed:
    spec: CommandSpec
    options: dict[str, object]


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse(group: str, text: str) -> Parsed:
    """Raise UserError (with the usage line) for anything that does not fit the catalogue."""
    text = text.strip()
    name, _, rest = text.partition(" ")
    name = name.lower()
    spec = COMMANDS.get((group, name))
    if spec is None:
        raise UserError("Unknown command `/{group} {name}`. Try `/gpt help`.", group=group, name=name or "")
    options: dict[str, object] = {}
    remaining = rest.strip()
    for index, option in enumerate(spec.options):
        if not remaining:
            if option.required:
                raise UserError("Missing {option}. Usage: `{usage}`", option=option.name, usage=spec.usage)
            break
        is_last = index == len(spec.options) - 1
        if is_last and option.type in (OptionType.STRING, OptionType.GPT, OptionType.CATEGORY):
            value: str = remaining
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            remaining = ""
        else:
            value, remaining = _take_one(remaining)
        options[option.name] = _convert(spec, option.name, option.type, value)
    if remaining:
        raise UserError("Too many values. Usage: `{usage}`", usage=spec.usage)
    return Parsed(spec, options)


def _take_one(text: str) -> tuple[str, str]:
    if text[0] in "\"'":
        quote = text[0]
        end = text.find(quote, 1)
        if end > 0:
            return text[1:end], text[end + 1 :].strip()
    head, _, tail = text.partition(" ")
    return head, tail.strip()


def _convert(spec: CommandSpec, name: str, kind: OptionType, value: str) -> object:
    if kind is OptionType.INTEGER:
        try:
            return int(value)
        except ValueError:
            raise UserError(
                "{option} must be a whole number. Usage: `{usage}`", option=name, usage=spec.usage
            ) from None
    return value
