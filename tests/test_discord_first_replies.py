"""What the Discord adapter may assume about a command's first reply before the core has sent it.

The adapter acknowledges every command at once ("thinking…") except those the catalogue declares
`opens_form`: a modal can only be an interaction's first response, so a command that is not declared
and opens a form first would show "this needs a form that I could not open" instead. And the
"thinking…" message is public only for the commands whose answer is (`PUBLIC_ANSWERS`), so that an
answer everyone should see does not start as a private one. Every catalogue command is run here
through the core, as a member, an admin and in a DM, and its first reply recorded."""

from __future__ import annotations

import itertools
from typing import Any

from bot import commands
from bot.adapters.discord import PLATFORM, PUBLIC_ANSWERS
from bot.bootstrap import App
from bot.catalog import CATALOG, CommandSpec, OptionSpec, OptionType
from bot.events import Actor, Command, Place
from bot.replies import Target
from tests.discord_support import ALICE, BOB, CAROL, seed_gpt
from tests.fakes.openai_server import FakeOpenAI
from tests.test_fuzz_core import (
    Recorder as FirstReply,  # keeps the replies, draining streams as a platform would
)

commands.load()
_ids = itertools.count()


def _values(spec: CommandSpec, option: OptionSpec, gpts: dict[str, str]) -> list[Any]:
    """Values a person would plausibly give, valid and not, so both the answer and the refusals run."""
    if option.type is OptionType.GPT:
        return [gpts["mine"], gpts["theirs"], "no-such-gpt"]
    if option.type is OptionType.INTEGER:
        return sorted({option.min_value or 0, option.max_value if option.max_value is not None else 1, 1})
    if option.type is OptionType.CATEGORY:
        return ["Education"]
    return ["", "tutor", "open", "allowlist", "on", "off", "member", "server", "yes", "no", "all", "here", "none", "FR",
            "What is 2 + 2?"]


def _option_sets(spec: CommandSpec, gpts: dict[str, str]) -> list[dict[str, Any]]:
    """No option at all, then each option's values in turn with the others at their first value."""
    base = {o.name: "tutor" if o.type is OptionType.STRING else _values(spec, o, gpts)[-1] if o.type is OptionType.INTEGER
            else _values(spec, o, gpts)[0] for o in spec.options}
    sets: list[dict[str, Any]] = [{}, dict(base)]
    for option in spec.options:
        for value in _values(spec, option, gpts):
            sets.append({**base, option.name: value})
    return sets


async def test_only_declared_commands_open_a_form_first_and_public_ones_are_known(
    app: App, fake_llm: FakeOpenAI
) -> None:
    gpts = {"mine": await seed_gpt(app, ALICE, "Alice", "Math Tutor"), "theirs": await seed_gpt(app, BOB, "Bob", "Old Helper")}
    guild = Place("g1", "general", workspace_name="Guild")
    dm = Place(None, "dm-alice", is_dm=True)
    people = [(Actor(PLATFORM, str(ALICE), "Alice", locale="en"), guild),
              (Actor(PLATFORM, str(CAROL), "Carol", is_admin=True, locale="en"), guild),
              (Actor(PLATFORM, str(ALICE), "Alice", locale="en"), dm)]
    forms, public = [], set()
    ran = 0
    for spec in sorted(CATALOG, key=lambda s: s.name in ("unpublish", "delete")):  # these last: they hide the GPT
        for options in _option_sets(spec, gpts):
            for actor, place in people:
                out = FirstReply()
                await app.core.handle(Command(actor, place, f"e{next(_ids)}", spec.group, spec.name, options), out)
                ran += 1
                if not out.replies:
                    continue
                first = out.replies[0]
                if first.form is not None and not spec.opens_form:
                    forms.append(f"/{spec.group} {spec.name} {options}")
                if first.target is Target.HERE and first.form is None and not first.ephemeral and not place.is_dm:
                    public.add((spec.group, spec.name))
    assert ran > len(CATALOG) * 3
    assert not forms, f"these open a form first: declare them with @command(..., opens_form=True): {forms}"
    assert public <= PUBLIC_ANSWERS, f"these answer publicly: add them to PUBLIC_ANSWERS: {public - PUBLIC_ANSWERS}"
    assert PUBLIC_ANSWERS <= public, f"these never answered publicly here: {PUBLIC_ANSWERS - public}"
