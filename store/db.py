"""The async engine and sessions, for SQLite (embedded) and PostgreSQL (scale-out).

SQLite gets WAL, foreign keys and a lock timeout on every connection, so that readers never
block the writer and a concurrent writer waits instead of failing at once; its statements run
on the event loop's thread and only a wait for a lock goes to a worker thread (store/sqlite_inline.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Executable, TextClause, bindparam, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import configure_mappers, make_transient_to_detached

from store.sqlite_checkpoints import AUTOCHECKPOINT_PAGES, Checkpointer
from store.sqlite_inline import InlineDBAPI, offloaded
from store.statements import Statements, open_statements

__all__ = ["Database", "detached", "loaded", "make_engine", "offloaded"]


def make_engine(url: str, *, pool_size: int = 10, lock_timeout: float = 15.0, echo: bool = False) -> AsyncEngine:
    """`lock_timeout`: how long a request waits for another writer (SQLite) or for a pooled
    connection (PostgreSQL) before it fails politely instead of hanging."""
    if url.startswith("sqlite"):
        # LIFO: the connection used last is used next, and its page cache is the one still valid
        # (a SQLite connection drops its cache when it sees that another one wrote).
        engine = create_async_engine(url, echo=echo, module=InlineDBAPI(int(lock_timeout * 1000)), pool_use_lifo=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, pool_timeout=lock_timeout,
    )
    event.listen(engine.sync_engine, "checkin", _idle_from_now)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


PING_AFTER_IDLE = 1.0
"""Seconds a pooled PostgreSQL connection may sit unused and still be trusted without a ping.

Why not `pool_pre_ping`: it costs a round trip on every checkout, six per ask. A connection that
was idle (or is new after a restart of the server) is pinged, so a restarted server is noticed
before a request uses a dead connection; one used a moment ago is alive in all but a race with
the restart itself, and then the request fails politely and SQLAlchemy renews the whole pool."""


def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.pop("idle_since", None)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:  # the pool replaces the connection and tries again
        raise DisconnectionError(str(error)) from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit survives a crash of the process (not of the machine's
    power, which costs an fsync per commit); the busy timeout stays 0 (see store/sqlite_inline.py)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")  # the rest: store/sqlite_checkpoints.py
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An engine plus its session factory; `session()` is a unit of work that commits on success."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        # PostgreSQL: statements that only read need no transaction around them (under READ
        # COMMITTED each one sees the latest commits anyway): no BEGIN and ROLLBACK round trips.
        lookups = engine if self.is_sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")
        self._group: GroupCommit | None = None
        self._lookups = async_sessionmaker(lookups, expire_on_commit=False, class_=AsyncSession, autoflush=False)
        path = engine.url.database if self.is_sqlite else None
        self._checkpoints = Checkpointer(path) if path and path != ":memory:" else None

    # On SQLite a session is opened and closed here rather than with SQLAlchemy's `async with`,
    # whose exit closes it in a task of its own (so that a cancellation cannot cut the close
    # short): that costs a turn of the event loop and keeps the connection out of the pool
    # meanwhile. A close on SQLite never waits (store/sqlite_inline.py), so nothing can cut it.

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work, committed when the block ends without an exception."""
        if not self.is_sqlite:
            async with self._sessions() as session, session.begin():
                yield session
            return
        session = self._sessions()
        try:
            await session.begin()
            yield session
            await session.commit()
        finally:
            await session.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """A transaction of plain statements run by the driver itself (store/statements.py),
        committed on success: the cheapest way to run a few statements, for the paths every ask
        takes. Its `execute(statement, params)` returns rows as tuples."""
        async with _committed(await open_statements(self.engine)) as statements:
            yield statements

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Statements]:
        """Plain statements that need no transaction around them: reads, and a single write that is
        atomic on its own. On PostgreSQL each one commits as it runs (no BEGIN and COMMIT round
        trips; a write waits for the disk); on SQLite the writes commit when the block ends."""
        async with _committed(await open_statements(self.engine, transaction=False)) as statements:
            yield statements

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[Statements]:
        """`transaction()` for statements that only read: nothing is committed, and on
        PostgreSQL each statement runs on its own, without a transaction around them."""
        statements = await open_statements(self.engine, transaction=False)
        try:
            yield statements
        finally:
            await statements.rollback()
            await statements.close()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: nothing is committed, the connection returns at once."""
        async with self._closing(self._sessions()) as session:
            yield session

    @asynccontextmanager
    async def lookups(self) -> AsyncIterator[AsyncSession]:
        """Like `reader()`, for code that only runs SELECTs (nothing added, nothing changed): on
        PostgreSQL each statement runs on its own, without a transaction. Use `reader()` where
        anything might be written, even by accident (an autoflush), so that it is rolled back."""
        async with self._closing(self._lookups()) as session:
            yield session

    @asynccontextmanager
    async def _closing(self, session: AsyncSession) -> AsyncIterator[AsyncSession]:
        if not self.is_sqlite:
            async with session:
                yield session
            return
        try:
            yield session
        finally:
            await session.close()

    async def grouped(self, writes: Writes) -> None:
        """Run `writes` (statements with their parameters) in a transaction shared with the writes
        other tasks hand in meanwhile, and return once it is committed (see `GroupCommit`)."""
        if self._group is None:
            self._group = GroupCommit(self)
        await self._group.write(writes)

    async def dispose(self) -> None:
        if self._checkpoints is not None:
            await asyncio.to_thread(self._checkpoints.stop)  # waits for a checkpoint under way
        await self.engine.dispose()


Writes = list[tuple[Executable, dict[str, Any]]]


@asynccontextmanager
async def _committed(statements: Statements) -> AsyncIterator[Statements]:
    """Commit what the block wrote when it ends without an exception, roll back otherwise, and give
    the connection back to the pool either way."""
    try:
        yield statements
        await statements.commit()
    except BaseException:
        await statements.rollback()
        raise
    finally:
        await statements.close()


class GroupCommit:
    """Group commit: the writes many tasks hand in at about the same moment go into one
    transaction, each statement run once for all of them (`executemany`), and every task waits
    until that transaction is committed. What it saves is per transaction and per statement
    call, which is most of the cost of a small write (a thousand answers finishing at once
    record their uses in a few transactions, not a thousand).

    The writes of different tasks must not depend on each other (they run shape by shape, in the
    order each shape first appears), nor may the statements of one task's writes depend on one
    another's effects or change one row twice (on PostgreSQL they run as one statement, on one
    snapshot). If a group fails, each task's writes are tried again in a
    transaction of their own, so one bad write fails only its task.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[Writes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, writes: Writes) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((writes, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)  # a cancelled caller's writes are still committed

    async def _flush(self) -> None:
        batch: list[tuple[Writes, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._run([writes for writes, _ in batch])
                except Exception:
                    for writes, done in batch:  # find the write that failed; the others go in
                        try:
                            await self._run([writes])
                        except Exception as error:
                            _settle(done, error)
                        else:
                            _settle(done, None)
                else:
                    for _, done in batch:
                        _settle(done, None)
        except BaseException:  # cancelled (the loop is closing): nobody waits forever
            for _, done in batch + self._pending:
                done.cancel()
            self._pending = []
            raise
        finally:
            self._flusher = None

    async def _run(self, batch: list[Writes]) -> None:
        # The writes of one shape (the same statements in the same order: the answers finishing
        # alike) go in together (`Statements.execute_together`: on PostgreSQL one statement for all
        # of them, one round trip). A group of one shape needs no transaction around it on
        # PostgreSQL (that statement is atomic on its own; 6 round trips for an answer before);
        # on SQLite `autocommit` is a transaction all the same.
        by_shape: dict[tuple[int, ...], tuple[tuple[Executable, ...], list[list[dict[str, Any]]]]] = {}
        for writes in filter(None, batch):
            statements = tuple(statement for statement, _ in writes)
            shape = by_shape.setdefault(tuple(map(id, statements)), (statements, []))
            shape[1].append([params for _, params in writes])
        if not by_shape:
            return
        async with self.db.autocommit() if len(by_shape) == 1 else self.db.transaction() as connection:
            for statements, sets in by_shape.values():
                await connection.execute_together(statements, sets)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def typed_sql(sql: str, *models: Any) -> TextClause:
    """Plain SQL for the paths every ask takes, its `:name` parameters typed like the columns of
    the same name in `models` (so datetimes, dates and booleans are stored exactly as the ORM
    stores them). Why text: a statement built with SQLAlchemy's constructs on each call, or run
    through the ORM's unit of work, costs several times the CPU of the statement itself."""
    clause = text(sql)
    columns: dict[str, Any] = {}
    for model in reversed(models):
        columns.update({column.name: column for column in model.__table__.columns})
    wanted = [bindparam(name, type_=columns[name].type) for name in clause._bindparams if name in columns]
    return clause.bindparams(*wanted) if wanted else clause


Model = TypeVar("Model")


def loaded(model: type[Model], values: Mapping[str, Any]) -> Model:
    """An instance of a table model made from values that are already valid (a row just read, or
    just written), the way the ORM's own loading makes one: pydantic validation of a `Conversation`
    or an `Invocation` costs ~100 µs, this ~10. Give it every column. The instance is transient
    (no identity, no session): read it, change it, pass it on; call `make_transient_to_detached`
    on it before adding it to a session that should update its row."""
    manager = model._sa_class_manager  # type: ignore[attr-defined]
    if not manager.mapper.configured:
        configure_mappers()
    instance: Model = manager.new_instance()
    instance.__dict__.update(values)
    return instance


def detached(model: type[Model], values: Mapping[str, Any]) -> Model:
    """`loaded`, then as a row loaded by a session that has since closed: adding it to a session
    updates its row (a transient one would be inserted again)."""
    instance = loaded(model, values)
    make_transient_to_detached(instance)
    return instance
