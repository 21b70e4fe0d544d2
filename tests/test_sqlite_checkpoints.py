"""SQLite's WAL checkpoints run on a thread of their own (store/sqlite_checkpoints.py): what is
committed reaches the database file without a commit having to copy it there, and the thread
ends with the `Database`."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from store.db import Database, make_engine
from store.sqlite_checkpoints import AUTOCHECKPOINT_PAGES


def checkpoint_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "sqlite-checkpoint")


def rows_in_the_file_alone(path: Path, copy: Path) -> int:
    """The rows a reader finds in the database file without its write-ahead log."""
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT count(*) FROM note").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table is there yet
        return 0
    finally:
        connection.close()


async def test_commits_reach_the_database_file_without_a_commit_time_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    before = checkpoint_threads()
    db = Database(make_engine(f"sqlite+aiosqlite:///{path}"))
    assert checkpoint_threads() == before + 1
    async with db.session() as session:
        await session.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    for i in range(200):  # 200 commits: far fewer pages than the commits' own checkpoint waits for
        async with db.session() as session:
            await session.execute(text("INSERT INTO note (body) VALUES (:body)"), {"body": f"note {i}"})
    async with db.session() as session:
        pages = (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
    assert pages == AUTOCHECKPOINT_PAGES

    found = 0
    for _ in range(40):  # the thread checkpoints every 0.25 s
        await asyncio.sleep(0.05)
        found = rows_in_the_file_alone(path, tmp_path / "copy.db")
        if found == 200:
            break
    assert found == 200
    await db.dispose()
    assert checkpoint_threads() == before
