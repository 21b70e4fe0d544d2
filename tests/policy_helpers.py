"""Shared by the policy tests: publishing GPTs through the DM builder, a console on another
server, autocomplete as a given person, and rows from the store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlmodel import select

from bot.adapters.console import PLATFORM
from bot.bootstrap import App
from bot.events import Actor, Autocomplete, Place
from bot.replies import Choice
from tests.conftest import Terminal

TUTOR_INSTRUCTIONS = (
    "You are a patient algebra tutor called Quillfeather. Always explain each step slowly, check that "
    "the student understood, and never give the final answer before the student tried."
)
POEM_INSTRUCTIONS = "You write short rhyming poems about whatever the user mentions, in four lines."


async def publish(t: Terminal, creator: str, name: str, description: str, instructions: str,
                  visibility: str = "public") -> str:
    out = await t.run(f":as {creator}", ":dm", "/gpt create", "fields", name, description, instructions,
                      "skip", "1", "1", visibility, "publish")
    assert f"Published **{name}**" in out, out
    return out


async def tutor_and_poem(t: Terminal) -> None:
    await publish(t, "alice", "Math Tutor", "Helps with algebra homework.", TUTOR_INSTRUCTIONS)
    await publish(t, "alice", "Poem Bot", "Writes short poems.", POEM_INSTRUCTIONS)


class OtherServer(Terminal):
    """The console, but in another workspace (another Discord server, another Slack team)."""

    def __init__(self, app: App, workspace: str = "elsewhere") -> None:
        super().__init__(app)
        place = self.adapter._place

        def elsewhere(message_id: str | None = None) -> Place:
            where = place(message_id)
            return replace(where, workspace_id=workspace, workspace_name=workspace) if where.workspace_id else where

        self.adapter._place = elsewhere  # type: ignore[method-assign]


async def autocomplete(app: App, user: str, value: str, *, group: str = "gpt", name: str = "ask",
                       admin: bool = False, workspace: str = "console") -> list[Choice]:
    actor = Actor(PLATFORM, user, user.capitalize(), is_admin=admin)
    return await app.core.autocomplete(Autocomplete(actor, Place(workspace, "general"), "", group, name, "gpt", value))


async def rows(app: App, model: Any) -> list[Any]:
    async with app.db.reader() as session:
        return list((await session.execute(select(model))).scalars())
