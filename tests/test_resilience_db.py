"""Database faults: the SQLite file locked by another writer. Requests during the outage fail
politely, the bot recovers by itself, and nothing committed is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from sqlmodel import select

from bot.bootstrap import bootstrap
from store.models import Gpt, Invocation
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI


async def test_sqlite_locked_by_another_writer(tmp_path, fake_llm: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "locked.db"
    app = await bootstrap(make_settings(f"sqlite+aiosqlite:///{path}", fake_llm.base_url, database_lock_timeout=0.3),
                          migrate=True)
    try:
        t = Terminal(app)
        await t.run(":as alice", ":dm", "/gpt create", "fields", "Lock Smith", "Opens locks.", "You help.",
                    "skip", "1", "1", "public", "publish")
        out = await t.run(":as bob", ":in #general", "/gpt ask lock-smith first")
        assert "Answer 1: first" in out

        locked, release = threading.Event(), threading.Event()

        def other_writer() -> None:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(10)
            connection.execute("ROLLBACK")
            connection.close()

        thread = threading.Thread(target=other_writer)
        thread.start()
        await asyncio.to_thread(locked.wait, 5)
        out = await t.run("/gpt ask lock-smith during the outage")
        assert "The store is briefly unavailable. Please try again in a moment." in out
        assert "Traceback" not in out
        release.set()
        await asyncio.to_thread(thread.join, 5)

        out = await t.run("/gpt ask lock-smith after")
        assert "Answer 1: after" in out
        async with app.db.reader() as session:
            statuses = [i.status for i in (await session.execute(select(Invocation))).scalars()]
            uses = (await session.execute(select(Gpt.uses))).scalar_one()
        assert statuses == ["ok", "ok"] and uses == 2
    finally:
        await app.aclose()
