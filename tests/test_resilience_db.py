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


async def test_old_delivery_ids_are_pruned(app) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from store.events import prune_seen
    from store.models import SeenEvent, utcnow

    async with app.db.session() as session:
        session.add(SeenEvent(key="console:old", created_at=utcnow() - timedelta(days=2)))
        session.add(SeenEvent(key="console:new"))
    async with app.db.session() as session:
        assert await prune_seen(session) == 1
    async with app.db.reader() as session:
        assert [e.key for e in (await session.execute(select(SeenEvent))).scalars()] == ["console:new"]


def _pg_controllable() -> bool:
    import os
    import shutil

    return bool(shutil.which("pg_ctlcluster")) and os.path.isdir("/etc/postgresql")


def _pg_cluster(action: str) -> None:
    import subprocess
    from pathlib import Path

    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *(
        ["-m", "fast"] if action == "stop" else [])], check=True, capture_output=True, timeout=60)


async def test_database_server_restarted_while_serving(database_url: str, fake_llm: FakeOpenAI) -> None:
    """The local PostgreSQL stopped and started under a running bot: requests during the outage fail
    politely, the bot reconnects by itself, and nothing committed is lost."""
    import pytest

    if database_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL fault")
    if not _pg_controllable():
        pytest.fail("PostgreSQL tests need the local server's pg_ctlcluster to restart it")
    app = await bootstrap(make_settings(database_url, fake_llm.base_url, database_lock_timeout=2.0), migrate=True)
    try:
        t = Terminal(app)
        await t.run(":as alice", ":dm", "/gpt create", "fields", "Steady Helper", "Stays up.", "You help.",
                    "skip", "1", "1", "public", "publish")
        out = await t.run(":as bob", ":in #general", "/gpt ask steady-helper before")
        assert "Answer 1: before" in out
        await asyncio.to_thread(_pg_cluster, "stop")
        try:
            out = await t.run("/gpt ask steady-helper during")
            assert "The store is briefly unavailable. Please try again in a moment." in out
            assert "Traceback" not in out
        finally:
            await asyncio.to_thread(_pg_cluster, "start")
        for _ in range(50):  # the server accepts connections again within a few seconds
            out = await t.run("/gpt ask steady-helper after")
            if "Answer 1: after" in out:
                break
            await asyncio.sleep(0.2)
        assert "Answer 1: after" in out
        async with app.db.reader() as session:
            statuses = [i.status for i in (await session.execute(select(Invocation))).scalars()]
            names = [g.name for g in (await session.execute(select(Gpt))).scalars()]
        assert names == ["Steady Helper"] and statuses.count("ok") == 2
    finally:
        await app.aclose()
