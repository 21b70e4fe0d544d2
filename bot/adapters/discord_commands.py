"""The core's command catalogue as Discord application commands, translated and synced.

Why generated: the catalogue (`bot.catalog.CATALOG`) is declared once in the core and grows as
other parts of the store are built; the tree is built from it when the client starts, so a new
command appears on Discord without a change here. Each command's callback only translates its
options into a core `Command` event; each GPT option autocompletes through the core.

Registering commands with Discord is rate limited and global registration takes a while to
reach every client, so the adapter registers only when the payload it would send (names,
options, translations) differs from the one last registered: a hash of it is kept in the
database (`Core.adapter_state`), shared by every replica.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, TranslationContextLocation, TranslationContextTypes, locale_str

from bot.catalog import GROUPS, CommandSpec, OptionSpec, OptionType
from bot.i18n import Translator, normalize_locale
from store.models import Category

log = logging.getLogger(__name__)

OnCommand = Callable[[discord.Interaction, CommandSpec, dict[str, Any]], Awaitable[None]]
OnAutocomplete = Callable[[discord.Interaction, CommandSpec, OptionSpec, str], Awaitable[list[Choice[str]]]]

SUBCOMMANDS_PER_GROUP = 25  # Discord's limit
STRING_LIMIT = 6000  # the longest string option Discord accepts
NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
NAMES = (
    TranslationContextLocation.command_name,
    TranslationContextLocation.group_name,
    TranslationContextLocation.parameter_name,
)

# The permissions the bot needs, and nothing more: read the channels it is used in, answer there
# and in threads, open the "continue in thread" threads, show cards, quote (reply to) a message.
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    read_message_history=True,
)
SCOPES = ("bot", "applications.commands")


def invite_url(client_id: int | str) -> str:
    """The OAuth2 URL a server admin opens to add the bot, with exactly the scopes and permissions it needs."""
    return discord.utils.oauth_url(client_id, permissions=BOT_PERMISSIONS, scopes=SCOPES)


class CoreTranslator(app_commands.Translator):
    """Command names, descriptions and choices through the core's translator (bot/locales/*.po).

    Message ids are the catalogue's English texts. Names must stay valid Discord names (lower case,
    no spaces, 32 characters): a translation that is not is left out, and Discord shows the English."""

    def __init__(self, tr: Translator) -> None:
        self.tr = tr

    async def translate(self, string: locale_str, locale: discord.Locale, context: TranslationContextTypes) -> str | None:
        language = normalize_locale(locale.value, "")
        if not language or language == "en" or not self.tr.has(language, string.message):
            return None
        text = self.tr(language, string.message)
        if context.location in NAMES:
            text = text.lower()
            return text if NAME_RE.match(text) else None  # "Demander à un GPT" is a sentence, not a name
        return text[:100] or None


def build_tree(
    client: discord.Client, catalog: Sequence[CommandSpec], *, on_command: OnCommand, on_autocomplete: OnAutocomplete
) -> app_commands.CommandTree[Any]:
    """One top-level command per catalogue group (`/gpt`, `/gpt-admin`), one subcommand per entry.

    A group whose commands are all admin commands gets `default_permissions(manage_guild=True)` and
    is server-only: Discord hides it from members. The core checks again at run time (Discord lets
    server admins change who sees a command)."""
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    names = list(dict.fromkeys(spec.group for spec in catalog))
    for name in names:
        specs = [spec for spec in catalog if spec.group == name]
        admin = all(spec.admin for spec in specs)
        group = app_commands.Group(
            name=locale_str(name), description=locale_str(_clip(GROUPS.get(name, name), 100)),
            default_permissions=discord.Permissions(manage_guild=True) if admin else None, guild_only=admin,
        )
        for spec in specs:
            if len(group.commands) >= SUBCOMMANDS_PER_GROUP:
                log.error("/%s %s left out: Discord allows %d subcommands a group", spec.group, spec.name, SUBCOMMANDS_PER_GROUP)
                continue
            group.add_command(make_command(spec, group, on_command, on_autocomplete))
        tree.add_command(group)
    return tree


def make_command(
    spec: CommandSpec, parent: app_commands.Group, on_command: OnCommand, on_autocomplete: OnAutocomplete
) -> app_commands.Command[Any, ..., None]:
    """A subcommand whose parameters are the spec's options (Python names `o0…`, renamed to the
    catalogue's names, so any option name the catalogue uses is fine)."""
    options = {f"o{index}": option for index, option in enumerate(spec.options)}

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await on_command(interaction, spec, {options[key].name: value for key, value in values.items()})

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    for key, option in options.items():
        parameters.append(inspect.Parameter(
            key, inspect.Parameter.KEYWORD_ONLY, annotation=_annotation(option),
            default=inspect.Parameter.empty if option.required else None,
        ))
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    if options:
        app_commands.describe(**{k: locale_str(_clip(o.description, 100) or o.name) for k, o in options.items()})(callback)
        app_commands.rename(**{k: locale_str(o.name) for k, o in options.items()})(callback)
    categories = {k: [Choice(name=locale_str(c.value), value=c.value) for c in Category]
                  for k, o in options.items() if o.type is OptionType.CATEGORY}
    if categories:
        app_commands.choices(**categories)(callback)
    suggest = {k: _suggester(spec, o, on_autocomplete) for k, o in options.items() if o.autocomplete}
    if suggest:
        app_commands.autocomplete(**suggest)(callback)
    return app_commands.Command(
        name=locale_str(spec.name), description=locale_str(_clip(spec.description, 100) or spec.name),
        callback=callback, parent=parent,
    )


def _annotation(option: OptionSpec) -> Any:
    if option.type is OptionType.INTEGER:
        if option.min_value is None and option.max_value is None:
            return int
        return app_commands.Range[int, option.min_value, option.max_value]
    if option.type is OptionType.STRING:
        return app_commands.Range[str, None, min(option.max_length or STRING_LIMIT, STRING_LIMIT)]
    return str


def _suggester(spec: CommandSpec, option: OptionSpec, on_autocomplete: OnAutocomplete) -> Any:
    async def suggest(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return await on_autocomplete(interaction, spec, option, current)

    return suggest


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def command_payload(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None) -> list[dict[str, Any]]:
    """What `tree.sync(guild=…)` would send, translations included."""
    commands = tree.get_commands(guild=guild)
    translator = tree.translator
    if translator is None:
        return [command.to_dict(tree) for command in commands]
    return [await command.get_translated_payload(tree, translator) for command in commands]


def payload_hash(payload: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree[Any], *, application_id: int, guild_id: int | None,
    remembered: Callable[[str], Awaitable[str | None]], remember: Callable[[str, str], Awaitable[None]],
) -> bool:
    """Register the commands globally, or in one guild for development (instantly visible there),
    unless Discord already has exactly this payload. True if it registered."""
    guild = discord.Object(guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    digest = payload_hash(await command_payload(tree, guild))
    key = f"discord:commands:{application_id}:{guild_id or 'global'}"
    if await remembered(key) == digest:
        log.info("Discord commands unchanged; not registering them again")
        return False
    await tree.sync(guild=guild)
    await remember(key, digest)
    log.info("registered the Discord commands %s", f"in guild {guild_id}" if guild_id else "globally")
    return True
