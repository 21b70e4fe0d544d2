"""The async engine and sessions, for SQLite (embedded) and PostgreSQL (scale-out).

SQLite gets WAL, a busy timeout and foreign keys on every connection, so that readers never
block the writer and a concurrent writer waits instead of failing at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(url: str, *, pool_size: int = 10, lock_timeout: float = 15.0, echo: bool = False) -> AsyncEngine:
    """`lock_timeout`: how long a request waits for another writer (SQLite) or for a pooled
    connection (PostgreSQL) before it fails politely instead of hanging."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": lock_timeout})
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, int(lock_timeout * 1000)))
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800,
        pool_timeout=lock_timeout,
    )


def _sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


class Database:
    """An engine plus its session factory; `session()` is a unit of work that commits on success."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: nothing is committed, the connection returns at once."""
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
