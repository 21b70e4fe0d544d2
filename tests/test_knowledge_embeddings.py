"""Ranking by meaning, when the operator sets GPTSTORE_KNOWLEDGE_EMBEDDING_MODEL: passages are
embedded through the real openai client at upload, the question at each ask, and a passage that
shares no word with the question can still ground the answer. Without the setting, or when the
endpoint fails, the words alone rank."""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.bootstrap import App, bootstrap
from store.models import KnowledgePassage
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.test_knowledge_console import draft_gpt

MANUAL = "\n\n".join([
    "# Owner's guide",
    "## Welcome\n\nThank you for choosing us. Read this guide before the first trip.",
    "## Seats\n\nThe seats fold flat when you pull the strap under the cushion.",
    "## Lights\n\nHeadlights switch on automatically at dusk.",
    "## Servicing\n\nThe automobile must be serviced every 10000 kilometres by an approved garage.",
])
QUESTION = "How frequently does my car need maintenance?"


@pytest.fixture
async def embedding_app(database_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[App]:
    fake_llm.synonyms = {"car": "automobile", "maintenance": "serviced", "frequently": "every"}
    bot = await bootstrap(make_settings(database_url, fake_llm.base_url, knowledge_embedding_model="text-embedding-3-small"),
                          migrate=True)
    yield bot
    await bot.aclose()


async def publish_manual(t: Terminal, tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(MANUAL)
    await draft_gpt(t, "Garage Helper")
    out = await t.run(f":attach {shlex.quote(str(path))}", "publish")
    assert "Added **guide.md**" in out and "Published **Garage Helper**" in out


async def test_meaning_finds_what_words_miss(embedding_app: App, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    t = Terminal(embedding_app)
    await publish_manual(t, tmp_path)
    assert fake_llm.embedding_requests[0]["model"] == "text-embedding-3-small"
    async with embedding_app.db.reader() as session:
        stored = list((await session.execute(select(KnowledgePassage))).scalars())
    assert stored and all(p.embedding for p in stored)

    out = await t.run(":as bob", ":in #general", f"/gpt ask garage-helper {QUESTION}")
    assert "10000 kilometres" in fake_llm.requests[-1]["messages"][0]["content"]
    assert "Sources: *guide.md*" in out


async def test_words_alone_without_the_setting(app: App, terminal: Terminal, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    await publish_manual(terminal, tmp_path)
    await terminal.run(":as bob", ":in #general", f"/gpt ask garage-helper {QUESTION}")
    assert "10000 kilometres" not in fake_llm.requests[-1]["messages"][0]["content"]
    assert not fake_llm.embedding_requests


async def test_a_failing_endpoint_still_adds_the_file(embedding_app: App, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    fake_llm.embeddings_fail = True
    t = Terminal(embedding_app)
    await publish_manual(t, tmp_path)
    out = await t.run(":as bob", ":in #general", "/gpt ask garage-helper When do the headlights switch on?")
    assert "at dusk" in fake_llm.requests[-1]["messages"][0]["content"] and "Sources: *guide.md*" in out
