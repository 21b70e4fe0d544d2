"""Knowledge files through Discord: the real discord.py on the fake Discord, whose CDN serves the files
people attach (signed, expiring URLs, as Discord's).

First what the adapter hands the core when a creator drops files into the bot's DM (name, size,
type, and a download from the CDN that happens only when the core asks); then the creator's story
through the core."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from sqlmodel import select

from bot.bootstrap import App
from bot.events import Event, Message
from bot.replies import Outbox
from store.models import KnowledgeFile
from tests.discord_support import ALICE, BOB, GENERAL, World, components, offline_world, visible_text, world
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge_files import pdf_bytes

__all__ = ["offline_world", "world"]

NOTES = (
    b"# Course notes\n\n## Photosynthesis\n\nChlorophyll absorbs red and blue light; the Calvin cycle\n"
    b"fixes carbon dioxide into glucose in the stroma.\n"
)


async def next_message(seen: list[Event]) -> Message:
    """The first message the core was handed (waiting for the gateway dispatch to arrive)."""
    for _ in range(1000):
        found = next((e for e in seen if isinstance(e, Message)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError("the adapter handed the core no message")


def record_events(app: App, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """What the adapter hands the core, instead of the core (the adapter part alone)."""
    seen: list[Event] = []

    async def handle(event: Event, out: Outbox) -> None:
        seen.append(event)

    monkeypatch.setattr(app.core, "handle", handle)
    return seen


async def test_a_file_dropped_in_the_dm_reaches_the_core_and_is_read_only_when_asked(
    world: World, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    seen = record_events(app, monkeypatch)
    dm = w.dm_channel(ALICE)
    await w.write(ALICE, dm, "", files={"Course notes.md": NOTES})  # a file and no text
    message = await next_message(seen)

    assert message.place.is_dm and message.text == "" and message.actor.user_id == str(ALICE)
    (file,) = message.files
    assert file.name == "Course_notes.md"  # Discord's own spelling of the name (no spaces)
    assert file.size == len(NOTES) and file.content_type.startswith("text/markdown")
    assert w.fake.cdn_downloads == []  # nothing downloaded until the core asks

    assert file.fetch is not None
    assert await file.fetch(10 * 1024 * 1024) == NOTES
    assert len(w.fake.cdn_downloads) == 1

    cut = await file.fetch(10)  # a file longer than the limit: the limit's worth, never the whole file
    assert cut == NOTES[:10]


async def test_several_files_with_text_and_an_expired_link(world: World, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    seen = record_events(app, monkeypatch)
    dm = w.dm_channel(ALICE)
    await w.write(ALICE, dm, "two for you", files={"a.md": b"# A", "table.csv": b"x,y\n1,2\n"})
    message = await next_message(seen)
    assert message.text == "two for you"
    assert [(f.name, f.size) for f in message.files] == [("a.md", 3), ("table.csv", 8)]
    assert message.files[1].content_type.startswith("text/csv")

    seen.clear()
    w.fake.cdn_ttl = -1  # a link already expired when the core asks (Discord's links last 24 h)
    await w.write(ALICE, dm, "", files={"late.md": b"# Late"})
    (late,) = (await next_message(seen)).files
    assert late.fetch is not None
    with pytest.raises(discord.NotFound):  # a failed download is an error, never a page read as text
        await late.fetch(1024)


async def test_files_in_a_server_channel_are_not_the_bots_unless_it_is_mentioned(
    world: World, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    seen = record_events(app, monkeypatch)
    await w.write(BOB, GENERAL, "look at this", files={"homework.md": b"# Homework"})
    await w.write(BOB, GENERAL, f"<@{w.fake.application_id}> read this", files={"asked.md": b"# Asked"})
    message = await next_message(seen)
    assert message.mentioned and [f.name for f in message.files] == ["asked.md"]
    await w.settled()
    assert len(seen) == 1 and w.fake.cdn_downloads == []


# --- the creator's story through the core ---------------------------------------------------------

PAGES = [
    "Biology 101 syllabus. The course runs for twelve weeks; labs are on Wednesdays.",
    "Photosynthesis. Chlorophyll absorbs red and blue light, and the Calvin cycle fixes carbon dioxide "
    "into glucose in the stroma of the chloroplast.",
]


async def stored_files(app: App) -> list[str]:
    async with app.db.reader() as session:
        return list((await session.execute(select(KnowledgeFile.name))).scalars())


async def start_draft(w: World) -> tuple[int, dict[str, Any]]:
    """alice: /gpt create, her idea drafted, the name changed; her DM and the draft card."""
    h = await w.command(ALICE, "create")
    await h.wait_original()
    dm = w.dm_channel(ALICE)
    await w.bot_says(dm, "Tell me in your own words")
    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "A biology tutor that answers from my course notes")
    draft = await w.bot_says(dm, "Here is a draft", after=seen)
    seen = len(w.bot_messages(dm))
    await (await w.press(ALICE, draft, "Change a field…", value="name")).wait_original()
    await w.write(ALICE, dm, "Biology Helper")
    return dm, await w.bot_says(dm, "Your draft", after=seen)


async def test_creator_attaches_a_pdf_in_the_dm_and_members_get_cited_answers(
    world: World, app: App, fake_llm: FakeOpenAI
) -> None:
    w = world
    dm, draft = await start_draft(w)

    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "", files={"biology-notes.pdf": pdf_bytes(PAGES)})
    added = await w.bot_says(dm, "Added **biology-notes.pdf** to your GPT's knowledge", after=seen)
    assert "2 pages" in visible_text(added)

    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "", files={"setup.exe": b"MZ\x90\x00" + bytes(200)})
    refused = await w.bot_says(dm, "setup.exe", after=seen)
    assert "I cannot use **setup.exe**" in visible_text(refused) and "PDF" in visible_text(refused)
    assert len(w.fake.cdn_downloads) == 1  # the refused file was judged by its name, never downloaded

    published = await (await w.press(ALICE, draft, "Publish")).wait_original()
    assert "Published **Biology Helper** (version 1)" in published["content"]
    assert await stored_files(app) == ["biology-notes.pdf"]

    h = await w.command(BOB, "ask", gpt="biology-helper", prompt="Which light does chlorophyll absorb?")
    answer = await h.wait_original(lambda m: components(m))
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "Chlorophyll absorbs red and blue light" in system and "*biology-notes.pdf*, p. 2" in system
    assert "Answer 1: Which light does chlorophyll absorb?" in answer["content"]
    assert answer["content"].rstrip().endswith("Sources: *biology-notes.pdf* (p. 2)")
    assert not w.fake.errors


async def test_a_file_discord_no_longer_serves_is_not_added(world: World, app: App) -> None:
    w = world
    dm, _ = await start_draft(w)
    w.fake.cdn_ttl = -1  # the link has expired by the time the bot reads it
    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "", files={"notes.md": NOTES})
    failed = await w.bot_says(dm, "notes.md", after=seen)
    assert "could not download **notes.md**" in visible_text(failed)
    assert await stored_files(app) == []
