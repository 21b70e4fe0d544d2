"""Knowledge through the console: a creator attaches real files in the DM builder, members' answers
are grounded in them and cite them; refusals say why and store nothing; GPTs never see each
other's passages; an open conversation keeps the files of the version it started on."""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import func, select

from bot.bootstrap import App, bootstrap
from store.models import KnowledgeFile, KnowledgePassage, VersionKnowledge
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge_files import Heading, docx_bytes, pdf_bytes

NOTES = """# Calculus notes

## Week 1: Limits

A limit describes the value a function approaches as the input approaches a point.

## Week 2: Derivatives

The derivative of x squared is two x. The power rule says the derivative of x to the n is n times x to the n minus one.
"""
PAGES = [
    "Syllabus. The course runs for twelve weeks and meets on Tuesdays.",
    "Grading. The final exam counts for forty percent of the grade; homework counts for thirty percent.",
    "Office hours are on Thursday afternoons in room 214 of the mathematics building.",
]


async def count(app: App, model) -> int:  # type: ignore[no-untyped-def]
    async with app.db.reader() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return shlex.quote(str(path))  # as typed after `:attach`


async def draft_gpt(t: Terminal, name: str, user: str = "alice") -> None:
    """A draft filled field by field, left at the review step (the card) in the creator's DM."""
    await t.run(f":as {user}", "/gpt create", ":dm", "fields", name, "A helper for the course",
                "Answer questions about the course using the attached notes.", "skip")
    await t.run(":pick 1 Education", ":pick 1 gpt-4o-mini", ":press public")


async def test_attach_publish_ask_and_cite(app: App, terminal: Terminal, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    t = terminal
    await draft_gpt(t, "Calculus Helper")
    out = await t.run(f":attach {write(tmp_path, 'notes.md', NOTES)} {write(tmp_path, 'Course guide.pdf', pdf_bytes(PAGES))}")
    assert "Added **notes.md** to your GPT's knowledge" in out
    assert "Added **Course guide.pdf** to your GPT's knowledge" in out and "3 pages" in out

    out = await t.run("knowledge")
    assert "1. notes.md" in out and "2. Course guide.pdf" in out

    out = await t.run("publish")
    assert "Published **Calculus Helper** (version 1)" in out

    out = await t.run(":as bob", ":in #general", "/gpt ask calculus-helper How much does the final exam count?")
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "forty percent" in system and "*Course guide.pdf*, p. 2" in system
    assert "Office hours" not in system or system.index("forty percent") < system.index("Office hours")
    assert "Sources: *Course guide.pdf* (p. 2" in out

    out = await t.run("/gpt ask calculus-helper What is the derivative of x squared?")
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "two x" in system and "Week 2: Derivatives" in system
    assert "Sources: *notes.md*" in out

    # a member has no way to the files themselves: no command shows them, only the count
    out = await t.run("/gpt info calculus-helper")
    assert "Knowledge files: 2" in out and "Course guide.pdf" not in out


async def test_refusals_say_why_and_store_nothing(app: App, terminal: Terminal, tmp_path: Path) -> None:
    t = terminal
    await draft_gpt(t, "Picky Helper")
    out = await t.run(f":attach {write(tmp_path, 'setup.exe', b'MZ' + bytes(200))}")
    assert "I cannot use **setup.exe**" in out and "PDF" in out
    out = await t.run(f":attach {write(tmp_path, 'empty.txt', b'')}")
    assert "**empty.txt** has no text I can use" in out
    out = await t.run(f":attach {write(tmp_path, 'broken.pdf', pdf_bytes(PAGES)[:300])}")
    assert "I cannot read **broken.pdf**" in out
    out = await t.run(f":attach {write(tmp_path, 'scan.pdf', pdf_bytes(['']))}")
    assert "**scan.pdf** has no text I can read" in out
    out = await t.run(f":attach {write(tmp_path, 'huge.txt', b'word ' * (2_200_000))}")
    assert "**huge.txt** is 10.5 MB; a knowledge file can be at most 10.0 MB." in out
    assert await count(app, KnowledgeFile) == 0 and await count(app, KnowledgePassage) == 0

    out = await t.run(f":attach {write(tmp_path, 'notes.md', NOTES)}", f":attach {write(tmp_path, 'again.md', NOTES)}")
    assert "**again.md** is already in this GPT's knowledge" in out
    assert await count(app, KnowledgeFile) == 1


@pytest.fixture
async def small_app(database_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[App]:
    settings = make_settings(database_url, fake_llm.base_url, knowledge_max_files=2, knowledge_max_file_mb=0.01,
                             knowledge_max_total_mb=0.015)
    bot = await bootstrap(settings, migrate=True)
    yield bot
    await bot.aclose()


async def test_limits(small_app: App, tmp_path: Path) -> None:
    t = Terminal(small_app)
    await draft_gpt(t, "Limited Helper")
    out = await t.run(f":attach {write(tmp_path, 'huge.txt', 'word ' * 5000)}")
    assert "**huge.txt** is 24 KB; a knowledge file can be at most 10 KB." in out
    out = await t.run(f":attach {write(tmp_path, 'a.txt', 'alpha ' * 1500)} {write(tmp_path, 'b.txt', 'beta ' * 1500)}")
    assert "Added **a.txt**" in out and "would take this GPT's knowledge past 15 KB in all" in out
    out = await t.run(f":attach {write(tmp_path, 'c.txt', 'gamma')} {write(tmp_path, 'd.txt', 'delta')}")
    assert "Added **c.txt**" in out and "already has 2 knowledge files" in out
    assert await count(small_app, KnowledgeFile) == 2


async def test_gpts_never_see_each_others_passages(app: App, terminal: Terminal, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    t = terminal
    await draft_gpt(t, "Syllabus Bot")
    await t.run(f":attach {write(tmp_path, 'Course guide.pdf', pdf_bytes(PAGES))}", "publish")
    await draft_gpt(t, "Secret Recipes", user="carol")
    recipes = write(tmp_path, "recipes.md", "# Grandma\n\nThe secret ingredient of the final exam cake is cardamom.")
    await t.run(f":attach {recipes}", "publish")

    out = await t.run(":as bob", ":in #general", "/gpt ask syllabus-bot What is the secret ingredient of the cake?")
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "cardamom" not in system and "recipes.md" not in out
    out = await t.run("/gpt ask secret-recipes What counts in the final exam?")
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "forty percent" not in system and "Course guide" not in out and "cardamom" in system


async def test_open_conversation_keeps_its_versions_files(app: App, terminal: Terminal, fake_llm: FakeOpenAI,
                                                          tmp_path: Path) -> None:
    t = terminal
    await draft_gpt(t, "Policy Desk")
    await t.run(f":attach {write(tmp_path, 'policy-2025.docx', docx_bytes([Heading('Refunds'), 'Refunds are accepted within 14 days.']))}",
                "publish")
    await t.run(":as bob", ":in #general", "/gpt ask policy-desk How many days for refunds?", ":press Continue in thread")
    assert "14 days" in fake_llm.requests[-1]["messages"][0]["content"]

    await t.run(":as alice", "/gpt edit policy-desk", ":dm")
    out = await t.run("forget policy-2025.docx")
    assert "Removed **policy-2025.docx**" in out
    await t.run(f":attach {write(tmp_path, 'policy-2026.docx', docx_bytes([Heading('Refunds'), 'Refunds are accepted within 30 days.']))}")
    out = await t.run("publish")
    assert "(version 2)" in out
    assert await count(app, KnowledgeFile) == 2  # version 1 still lists the old file

    await t.run(":as bob", ":in t1", "And refunds after a week?")
    pinned = fake_llm.requests[-1]["messages"][0]["content"]
    assert "14 days" in pinned and "30 days" not in pinned
    await t.run(":in #general", "/gpt ask policy-desk How many days for refunds?")
    fresh = fake_llm.requests[-1]["messages"][0]["content"]
    assert "30 days" in fresh and "14 days" not in fresh


async def test_cancel_and_forget_leave_nothing_behind(app: App, terminal: Terminal, tmp_path: Path) -> None:
    t = terminal
    out = await t.run(":as dave", ":dm", f":attach {write(tmp_path, 'notes.md', NOTES)}")
    assert "start with `/gpt create`" in out
    await draft_gpt(t, "Throwaway", user="dave")
    more = write(tmp_path, "more.md", "# More\n\nMore notes.")
    await t.run(f":attach {write(tmp_path, 'notes.md', NOTES)} {more}")
    await t.run("forget 2")
    assert await count(app, KnowledgeFile) == 1
    out = await t.run("cancel")
    assert "Cancelled" in out
    assert await count(app, KnowledgeFile) == 0 and await count(app, KnowledgePassage) == 0
    assert await count(app, VersionKnowledge) == 0


async def test_counts_read_as_words(terminal: Terminal, tmp_path: Path) -> None:
    """'1 passage', '1 page': a small file is described the way a person would say it."""
    await draft_gpt(terminal, "Office Hours")
    out = await terminal.run(f":attach {write(tmp_path, 'hours.txt', 'Office hours are on Tuesdays at noon.')}")
    assert "1 passage" in out and "1 passages" not in out
    out = await terminal.run(f":attach {write(tmp_path, 'one.pdf', pdf_bytes(['Rooms change in week three.']))}")
    assert "1 page, 1 passage" in out and "1 pages" not in out
