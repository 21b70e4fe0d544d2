"""Shared fixtures: a real store (a SQLite file, and PostgreSQL when GPTSTORE_TEST_DATABASE_URL is
set), the fake OpenAI-compatible server, the bootstrapped bot, and the console driving it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console as RichConsole
from sqlalchemy import text

from bot.adapters.console import ConsoleAdapter
from bot.bootstrap import App, bootstrap
from config import Settings, load_settings
from store.db import Database, make_engine
from store.migrate import upgrade
from tests.fakes.openai_server import FakeOpenAI

PG_URL = os.environ.get("GPTSTORE_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
_pg_ready = False


async def _reset_postgres(url: str) -> None:
    """Migrate once per run, then empty every table before each test (fast and isolating)."""
    global _pg_ready
    engine = make_engine(url)
    try:
        if not _pg_ready:
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await upgrade(engine)
            _pg_ready = True
        async with engine.begin() as conn:
            tables = (await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"
            ))).scalars().all()
            if tables:
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        assert PG_URL
        await _reset_postgres(PG_URL)
        return PG_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'gptstore.db'}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The store without the bot: a migrated `Database` (PostgreSQL: already at heads, a no-op)."""
    database = Database(make_engine(database_url))
    await upgrade(database.engine)
    yield database
    await database.dispose()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def make_settings(database_url: str, llm_url: str | None, **extra: object) -> Settings:
    values: dict[str, object] = dict(
        database_url=database_url, llm_base_url=llm_url, llm_api_key=None, llm_models=["gpt-4o-mini", "gpt-4o"],
        llm_max_retries=1, llm_stall_timeout=2.0, llm_timeout=10.0, secret_key="test-sealing-key-9c1f0b7e5d",
    )
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def app(database_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[App]:
    bot = await bootstrap(make_settings(database_url, fake_llm.base_url), migrate=True)
    yield bot
    await bot.aclose()


class Terminal:
    """The console adapter with its output captured, as a person at the terminal would read it."""

    def __init__(self, app: App) -> None:
        self.screen = RichConsole(record=True, width=200, color_system=None, force_terminal=False)
        self.adapter = ConsoleAdapter(app.core, out=self.screen)

    async def run(self, *lines: str) -> str:
        self.screen.export_text(clear=True)
        await self.adapter.run_lines(lines, echo=False)
        return self.screen.export_text(clear=True)


@pytest.fixture
def terminal(app: App) -> Terminal:
    return Terminal(app)


@pytest.fixture(autouse=True)
def _no_env_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GPTSTORE_") and name != "GPTSTORE_TEST_DATABASE_URL" or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)


__all__ = ["Terminal", "make_settings", "asyncio"]


@pytest.fixture(autouse=True)
def _no_local_model(_no_env_leaks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the `local` extra installed, a bot with no endpoint would start the 135M model; tests
    that mean "nothing configured" must not. tests/test_localmodel.py turns it on explicitly."""
    monkeypatch.setenv("GPTSTORE_LLM_LOCAL", "false")


@pytest.fixture
async def slack_env(app: App, fake_llm: FakeOpenAI) -> AsyncIterator[object]:
    """The real Bolt app of the Slack adapter on 127.0.0.1 in front of the fake Slack Web API."""
    from tests.slack_env import open_slack_env

    async with open_slack_env(app, fake_llm) as env:
        yield env
