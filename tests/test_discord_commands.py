"""App commands on Discord: generated from the core's catalogue, registered only when it changed,
every one of them run end to end through discord.py, autocomplete, admins, French, the invite URL."""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, select, update
from typer.testing import CliRunner

from bot.adapters.discord import PUBLIC_ANSWERS
from bot.bootstrap import App
from bot.catalog import CATALOG, COMMANDS, CommandSpec, OptionSpec, OptionType
from bot.commands import HINT
from bot.i18n import Translator
from store.models import Category, Gpt, Workspace
from tests.discord_support import (
    ALICE,
    BOB,
    CAROL,
    EPHEMERAL,
    GENERAL,
    GUILD,
    OWNER,
    World,
    offline_world,
    seed_gpt,
    world,
)
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["offline_world", "world"]
COMMANDS_ROUTE = "/applications/{application_id}/commands"
GUILD_COMMANDS_ROUTE = "/applications/{application_id}/guilds/{guild_id}/commands"
FAILURES = ("Something went wrong", "incident", "Unknown command", "no longer available", "Missing ",
            "a form that I could not open")


def registered(w: World, route: str = COMMANDS_ROUTE) -> list[list[dict[str, Any]]]:
    return [c.json for c in w.fake.calls if c.method == "PUT" and c.route == route and c.status == 200]


def subcommand(payload: list[dict[str, Any]], group: str, name: str) -> dict[str, Any]:
    top = next(c for c in payload if c["name"] == group)
    return next(o for o in top["options"] if o["name"] == name)


async def test_commands_are_the_catalogue(world: World) -> None:
    [payload] = registered(world)
    groups = {c["name"]: c for c in payload}
    assert set(groups) == {spec.group for spec in CATALOG}
    for spec in CATALOG:
        sub = subcommand(payload, spec.group, spec.name)
        assert sub["type"] == 1 and sub["description"] == spec.description[:100]
        assert [o["name"] for o in sub.get("options", [])] == [o.name for o in sorted(spec.options, key=lambda o: not o.required)]
    admin = groups["gpt-admin"]
    assert int(admin["default_member_permissions"]) == 1 << 5  # Manage Server
    assert admin["contexts"] == [0] or admin.get("dm_permission") is False  # servers only
    assert groups["gpt"]["default_member_permissions"] is None
    ask = {o["name"]: o for o in subcommand(payload, "gpt", "ask")["options"]}
    assert ask["gpt"]["autocomplete"] is True and ask["prompt"]["max_length"] == 6000
    stars = {o["name"]: o for o in subcommand(payload, "gpt", "rate")["options"]}["stars"]
    assert (stars["type"], stars["min_value"], stars["max_value"], stars["required"]) == (4, 1, 5, True)
    category = subcommand(payload, "gpt", "browse")["options"][0]
    assert [c["value"] for c in category["choices"]] == [c.value for c in Category] and not category.get("required")


async def test_registered_again_only_when_the_catalogue_changes(offline_world: World, app: App) -> None:
    w = offline_world
    await w.start()
    await w.stop()
    await w.start()  # a restart with the same catalogue: nothing to register
    assert len(registered(w)) == 1
    await w.stop()

    async def handler(ctx: Any, **_: Any) -> None:
        await ctx.say("Tea is served.")

    spec = CommandSpec("gpt", "tea", "A cup of tea", (OptionSpec("kind", "Which tea", required=False),), handler)
    CATALOG.append(spec)
    COMMANDS[("gpt", "tea")] = spec
    try:
        await w.start()  # another engineer added a command: it appears without an adapter change
        assert len(registered(w)) == 2
        assert subcommand(registered(w)[-1], "gpt", "tea")["description"] == "A cup of tea"
        h = await w.command(BOB, "tea", kind="green")
        assert "Tea is served." in await w.replies(h)
    finally:
        CATALOG.remove(spec)
        del COMMANDS[("gpt", "tea")]


async def test_development_guild_gets_the_commands_at_once(offline_world: World, app: App) -> None:
    w = offline_world
    app.settings.discord_dev_guild = GUILD
    await w.start()
    assert registered(w) == [] and len(registered(w, GUILD_COMMANDS_ROUTE)) == 1
    h = await w.command(BOB, "help")
    assert "GPT store" in await w.replies(h)


async def test_autocomplete_suggests_what_the_user_may_see(world: World, app: App) -> None:
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    await seed_gpt(app, ALICE, "Alice", "Math Drills")
    await seed_gpt(app, ALICE, "Alice", "Secret Math", visibility="private")
    await seed_gpt(app, ALICE, "Alice", "Poetry Coach")
    choices = await world.autocomplete(BOB, "ask", "gpt", "math")
    assert {c["name"] for c in choices} == {"Math Tutor", "Math Drills"}
    assert {c["value"] for c in choices} == {"math-tutor", "math-drills"}
    mine = await world.autocomplete(ALICE, "edit", "gpt", "secret")
    assert [c["name"] for c in mine] == ["Secret Math"]  # her own private GPT, for her only
    assert await world.autocomplete(BOB, "info", "gpt", "zzz") == []


async def test_autocomplete_lists_names_that_match_first_then_the_most_used(world: World, app: App) -> None:
    pal = await seed_gpt(app, ALICE, "Alice", "Homework Pal")
    helper = await seed_gpt(app, ALICE, "Alice", "Homework Helper")
    tutor = await seed_gpt(app, ALICE, "Alice", "Math Tutor")  # "homework" only in its description
    async with app.db.session() as session:
        for slug, uses in ((tutor, 50), (helper, 7), (pal, 2)):
            await session.execute(update(Gpt).where(col(Gpt.slug) == slug).values(uses=uses))
    choices = await world.autocomplete(BOB, "ask", "gpt", "home")
    assert [c["name"] for c in choices] == ["Homework Helper", "Homework Pal", "Math Tutor"]
    assert [c["name"] for c in await world.autocomplete(BOB, "ask", "gpt", "")][:1] == ["Math Tutor"]


async def test_a_member_is_refused_an_admin_command(world: World, app: App) -> None:
    h = await world.command(BOB, "mode", group="gpt-admin", mode="allowlist")
    refused = await world.replies(h)
    assert "Only this server's admins can use `/gpt-admin mode`" in refused
    assert h.original is not None and h.original["flags"] & EPHEMERAL
    for admin in (CAROL, OWNER):  # a role with Manage Server; the owner
        h = await world.command(admin, "policy", group="gpt-admin")
        text = await world.replies(h)
        assert "Only this server's admins" not in text and not any(f in text for f in FAILURES), text


def _sample(spec: CommandSpec, option: OptionSpec, gpts: dict[str, str]) -> Any:
    """A value a person would plausibly type for this option."""
    known = {"mode": "open", "state": "off", "scope": "member", "opt_in": "no", "region": "FR",
             "query": "tutor", "prompt": "What is 2 + 2?", "reason": "It was rude.", "review": "Nice",
             "category": "Education", "code": "", "channels": ""}
    if option.type is OptionType.GPT:
        return gpts["victim"] if spec.name in ("unpublish", "delete", "edit") else gpts["tutor"]
    if option.type is OptionType.INTEGER:
        return option.max_value if option.max_value is not None and option.max_value <= 5 else max(option.min_value or 0, 1)
    if option.type is OptionType.CATEGORY:
        return "Education"
    return known.get(option.name, "test")


async def test_every_command_end_to_end(world: World, app: App, fake_llm: FakeOpenAI) -> None:
    """Every command of the catalogue (whoever added it), run as a person would on Discord: it is
    acknowledged in time, "thinking…" shows at once unless the command may open a form (public only
    where the answer is), and what the person sees is an answer, not an error."""
    gpts = {"tutor": await seed_gpt(app, ALICE, "Alice", "Math Tutor", starters=("Help with fractions",)),
            "victim": await seed_gpt(app, ALICE, "Alice", "Old Helper")}
    creator_commands = {"edit", "unpublish", "delete", "mine", "earnings"}
    dm_commands = {"use", "payout-settings"}
    order = sorted(CATALOG, key=lambda s: (s.name in ("unpublish", "delete"), s.group, s.name))
    problems = []
    for spec in order:
        user = CAROL if spec.admin else ALICE if spec.name in creator_commands else OWNER if spec.name == "remix" else BOB
        channel = world.dm_channel(user) if spec.name in dm_commands else GENERAL
        options = {o.name: _sample(spec, o, gpts) for o in spec.options if o.required or o.name in ("review", "category")}
        h = await world.command(user, spec.name, group=spec.group, channel=channel, **options)
        callback = await h.response(timeout=10)
        seen = await world.replies(h)
        expected = (4, 5, 9) if spec.opens_form else (5,)
        if callback["type"] not in expected or not seen.strip() or any(f in seen for f in FAILURES):
            problems.append(f"/{spec.group} {spec.name} {options}: callback {callback['type']}: {seen[:300]!r}")
        private = bool((callback.get("data") or {}).get("flags", 0) & EPHEMERAL)
        if callback["type"] == 5 and channel == GENERAL and private != ((spec.group, spec.name) not in PUBLIC_ANSWERS):
            problems.append(f"/{spec.group} {spec.name}: thinking… {'private' if private else 'public'}")
    assert not problems, "\n".join(problems)
    assert not world.fake.errors
    late = [c for c in world.fake.calls if c.status == 404 and "/interactions/" in c.path]
    assert not late, late  # never past Discord's 3 s


async def test_french_user_gets_french_commands_and_replies(offline_world: World, app: App) -> None:
    fr = {
        "search": "chercher", "Search the GPT store": "Chercher dans la boutique de GPT",
        "query": "requête", "Words to look for": "Mots à chercher", "Education": "Éducation",
        "No GPT matches that search. Try other words, or `/gpt browse`.":
            "Aucun GPT ne correspond à cette recherche. Essayez d'autres mots, ou `/gpt browse`.",
        "Browse GPTs by category": "Parcourir les GPT par catégorie",
        "ask": "Demander à un GPT",  # not a valid command name: Discord keeps the English one
        HINT: "Pour parler à un GPT, écrivez `<gpt>: votre question`.",
    }
    app.services.tr = Translator({"fr": fr})
    w = offline_world
    await w.start()
    [payload] = registered(w)
    search = subcommand(payload, "gpt", "search")
    assert search["name_localizations"] == {"fr": "chercher"}
    assert search["description_localizations"] == {"fr": "Chercher dans la boutique de GPT"}
    assert search["options"][0]["name_localizations"] == {"fr": "requête"}
    assert not subcommand(payload, "gpt", "ask").get("name_localizations")
    education = next(c for c in subcommand(payload, "gpt", "browse")["options"][0]["choices"] if c["value"] == "Education")
    assert education["name_localizations"] == {"fr": "Éducation"}

    h = await w.command(BOB, "search", locale="fr", query="nothing like this")
    assert "Aucun GPT ne correspond" in await w.replies(h)
    h = await w.command(ALICE, "search", locale="en-US", query="nothing like this")
    assert "No GPT matches that search" in await w.replies(h)
    # a message carries no language: the bot answers in the one bob's last command came with
    dm = w.dm_channel(BOB)
    await w.write(BOB, dm, "bonjour ?")
    await w.bot_says(dm, "Pour parler à un GPT")


async def test_joining_and_leaving_a_server(world: World, app: App) -> None:
    async def workspaces() -> dict[str, bool]:
        async with app.db.reader() as session:
            found = (await session.execute(select(Workspace).where(Workspace.platform == "discord"))).scalars()
            return {w.external_id: w.active for w in found}

    async def found_at_start() -> bool:
        return await workspaces() == {str(GUILD): True}

    await _eventually(found_at_start)
    other = GUILD + (1 << 22)
    world.fake.add_guild(other, "Chess Club", owner_id=OWNER)  # the bot is added to a server

    async def joined() -> bool:
        return (await workspaces()).get(str(other)) is True

    await _eventually(joined)
    await world.fake.send_dispatch("GUILD_DELETE", {"id": str(other)}, guild_id=other)  # and removed

    async def left() -> bool:
        return (await workspaces()).get(str(other)) is False

    await _eventually(left)


async def _eventually(check: Any, tries: int = 200) -> None:
    import asyncio

    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The CLI configures logging for the process (a handler on its stderr): undo it for the next tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = [name for name in logging.root.manager.loggerDict if isinstance(logging.getLogger(name), logging.Logger)]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name in logging.root.manager.loggerDict:
        logger = logging.getLogger(name)
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


def test_invite_url_has_exactly_the_scopes_and_permissions(logging_restored: None) -> None:
    import typer

    from bot.cli_discord import app as discord_cli

    cli = typer.Typer()
    cli.add_typer(discord_cli, name="discord")
    runner = CliRunner()
    result = runner.invoke(cli, ["discord", "invite-url", "--client-id", "123456789012345678"])
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith("https://discord.com/oauth2/authorize?client_id=123456789012345678")
    assert "scope=bot+applications.commands&" in url
    # view channel, send, send in threads, create public threads, embed links, read history
    expected = (1 << 10) | (1 << 11) | (1 << 38) | (1 << 35) | (1 << 14) | (1 << 16)
    assert url.endswith(f"permissions={expected}")

    token = base64.b64encode(b"987654321098765432").decode().rstrip("=") + ".GhIjKl.signature"
    result = runner.invoke(cli, ["discord", "invite-url"], env={"GPTSTORE_DISCORD_TOKEN": token})
    assert result.exit_code == 0, result.output
    assert "client_id=987654321098765432" in result.output
    result = runner.invoke(cli, ["discord", "invite-url"])
    assert result.exit_code == 2


def test_gptstore_has_the_discord_command() -> None:
    result = subprocess.run([sys.executable, "-m", "bot.cli", "discord", "invite-url", "--client-id", "42"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "client_id=42&scope=bot+applications.commands" in result.stdout
