"""SQLite statements run on the event loop's own thread, and wait for a lock on a worker thread.

Why: aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
hands the result back through the event loop, about four thread hand-offs per statement. A
statement on a local SQLite file takes tens of microseconds; the hand-offs cost far more (py-spy:
36 % of the bot's CPU per ask went to them, bench/overhead.py). Here a statement runs inline, with
SQLite's busy timeout at zero, so it never blocks the loop waiting for another writer: when the
database is locked, the same call is retried on a worker thread with the configured lock timeout
while the loop goes on. Waiting, failing after the timeout, and every transaction's isolation are
what they were with aiosqlite.

A job whose statements run for long (the monthly reward close over millions of uses) runs them
on worker threads instead, inside `offloaded()`, so the loop keeps serving meanwhile.

The engine keeps SQLAlchemy's aiosqlite dialect (same SQL, same URL); only the DBAPI module under
it is this one (`create_async_engine(..., module=dbapi())`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")

# Threads that wait for SQLite locks (and run offloaded work): one per waiting statement, so a
# waiter never queues behind another and waits longer than its timeout.
_WAITERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sqlite-wait")
_offloaded: ContextVar[bool] = ContextVar("sqlite_offloaded", default=False)


@contextmanager
def offloaded() -> Iterator[None]:
    """Statements in this context (this task and those it starts) run on worker threads."""
    token = _offloaded.set(True)
    try:
        yield
    finally:
        _offloaded.reset(token)


def _locked(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "locked" in str(error)


class InlineConnection(AdaptedConnection):
    """The DBAPI connection SQLAlchemy sees: sqlite3 calls made at once, locks waited for off-loop."""

    __slots__ = ("dbapi", "_busy_ms")
    _connection: sqlite3.Connection  # type: ignore[assignment]  # a plain DBAPI connection, not an asyncio one

    def __init__(self, dbapi: Any, connection: sqlite3.Connection, busy_ms: int) -> None:
        self.dbapi = dbapi
        self._connection = connection
        self._busy_ms = busy_ms

    def run(self, call: Callable[..., T], *args: Any) -> T:
        if _offloaded.get():
            return await_(self._off_loop(call, args))
        try:
            return call(*args)
        except sqlite3.OperationalError as error:
            if not _locked(error) or self._busy_ms <= 0:
                raise
        # Nothing was done (a statement that cannot get its lock changes nothing): wait for it.
        return await_(self._off_loop(call, args))

    async def call_async(self, call: Callable[..., T], *args: Any) -> T:
        """`run` as a coroutine that does not suspend unless it must wait: SQLAlchemy's
        AsyncConnection.execute insists that a statement goes through at least one await."""
        if not _offloaded.get():
            try:
                return call(*args)
            except sqlite3.OperationalError as error:
                if not _locked(error) or self._busy_ms <= 0:
                    raise
        return await self._off_loop(call, args)

    async def _off_loop(self, call: Callable[..., T], args: tuple[Any, ...]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_WAITERS, partial(self._waiting, call, args))

    def _waiting(self, call: Callable[..., T], args: tuple[Any, ...]) -> T:
        connection = self._connection
        connection.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        try:
            return call(*args)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value  # type: ignore[assignment]

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self, server_side)

    def execute(self, operation: Any, parameters: Any = None) -> InlineCursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def commit(self) -> None:
        self.run(self._connection.commit)

    def rollback(self) -> None:
        # The pool rolls back every connection it gets back: most have nothing open (a commit,
        # or only reads), and then there is nothing to wait for or to undo.
        if self._connection.in_transaction:
            self.run(self._connection.rollback)

    def close(self) -> None:
        self._connection.close()

    def terminate(self) -> None:
        self._connection.close()


class InlineCursor:
    """A sqlite3 cursor whose calls go through the connection's lock handling. Rows are read at
    `execute` (SQLAlchemy's asyncio layer closes the cursor before the result is consumed), except
    on a server-side cursor (`stream()`, `yield_per`), which reads them from SQLite as asked."""

    __slots__ = ("_adapted", "_cursor", "_rows", "_server_side", "description", "rowcount", "lastrowid")

    def __init__(self, adapted: InlineConnection, server_side: bool) -> None:
        self._adapted = adapted
        self._cursor = adapted._connection.cursor()
        self._server_side = server_side
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        args = (operation,) if parameters is None else (operation, parameters)
        return await_(self._adapted.call_async(self._executed, self._cursor.execute, args))

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await_(self._adapted.call_async(self._executed, self._cursor.executemany, (operation, seq_of_parameters)))

    def _executed(self, call: Callable[..., Any], args: tuple[Any, ...]) -> None:
        cursor = self._cursor
        call(*args)
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        if self.description is not None and not self._server_side:
            self._rows = deque(cursor.fetchall())

    async def _async_soft_close(self) -> None:
        if not self._server_side:
            self._cursor.close()

    def fetchone(self) -> Any:
        if self._server_side:
            return self._adapted.run(self._cursor.fetchone)
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> Any:
        size = size if size is not None else self._cursor.arraysize
        if self._server_side:
            return self._adapted.run(self._cursor.fetchmany, size)
        rows = self._rows
        return [rows.popleft() for _ in range(min(size, len(rows)))]

    def fetchall(self) -> Any:
        if self._server_side:
            return self._adapted.run(self._cursor.fetchall)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def setinputsizes(self, *sizes: Any) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite's DBAPI facade (same exceptions and attributes) with `connect` made inline."""

    def __init__(self, busy_ms: int) -> None:
        super().__init__(aiosqlite, sqlite3)
        self.busy_ms = busy_ms

    def connect(self, *args: Any, **kw: Any) -> InlineConnection:  # type: ignore[override]
        kw.pop("async_creator_fn", None)
        kw["timeout"] = 0  # never wait on the loop; `InlineConnection.run` waits on a thread
        kw["check_same_thread"] = False  # a lock wait runs the call on a worker thread
        return InlineConnection(self, sqlite3.connect(*args, **kw), self.busy_ms)
