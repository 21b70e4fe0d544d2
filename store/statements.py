"""Statements run on the driver's own connection, for the transactions every ask takes.

Why: a statement through SQLAlchemy's asyncio layer costs ~30 µs of CPU (a greenlet switch, an
execution context, a result object) where `sqlite3` itself takes ~4 µs, and an ask runs a dozen
(bench/overhead.py; README "What bounds the rest"). The statements stay SQLAlchemy's: each one
(a `text()` from `store.db.typed_sql`, or a `select()`) is compiled once per dialect by SQLAlchemy,
and its parameters and result columns go through SQLAlchemy's own type processors, so a value is
written and read exactly as the ORM writes and reads it. Only the execution is ours: the pooled
connection's driver (sqlite3 under store/sqlite_inline.py, or asyncpg) runs the compiled SQL.

Driver errors come out as SQLAlchemy's exceptions (IntegrityError, OperationalError, ...), so the
callers and `bot.core`'s "the store is briefly unavailable" see what they saw before; a
PostgreSQL connection that died renews the pool, as SQLAlchemy does on a disconnect.
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from store.sqlite_inline import InlineConnection

__all__ = ["Result", "Statements", "open_statements"]

Params = dict[str, Any]
Processor = Callable[[Any], Any] | None


class Result:
    """The rows a statement returned (as tuples) and how many rows it changed."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if len(self._rows) != 1:
            raise exc.NoResultFound("expected one row") if not self._rows else exc.MultipleResultsFound("more than one row")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        if not self._rows:
            return None
        return self.one()[0]


class _Compiled:
    """One statement compiled for one dialect: its SQL, the order of its parameters with their
    bind processors, and a result processor per column (when the statement declares columns)."""

    __slots__ = ("sql", "binds", "defaults", "results", "returns_rows")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        sql = compiled.string
        if "POSTCOMPILE" in sql:
            raise ValueError("an expanding parameter (IN) cannot run as a driver-level statement")
        processors = compiled._bind_processors  # SQLAlchemy's own conversions (datetimes, booleans, JSON)
        self.sql = sql
        self.binds: list[tuple[str, Processor]] = [
            (name, processors.get(name)) for name in compiled.positiontup or ()  # type: ignore[misc]
        ]
        # values written into the statement itself (`Account.id == 1` becomes a parameter)
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        columns = compiled._result_columns
        self.results: list[Processor] | None = [
            column[3]._cached_result_processor(dialect, None) for column in columns
        ] if columns else None
        if self.results is not None and not any(self.results):
            self.results = None
        head = sql.lstrip()[:6].upper()
        self.returns_rows = head in ("SELECT", "WITH") or " RETURNING " in sql.upper()

    def args(self, params: Params) -> list[Any]:
        if self.defaults:
            params = {**self.defaults, **params}
        return [params[name] if processor is None else processor(params[name]) for name, processor in self.binds]

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        results = self.results
        if results is None:
            return [tuple(row) for row in raw]
        return [tuple(value if p is None else p(value) for p, value in zip(results, row, strict=True)) for row in raw]


_COMPILED: dict[tuple[tuple[int, ...], str], tuple[tuple[Executable, ...], Any]] = {}
_COMPILED_MAX = 2_000
"""Statements are meant to be built once (module constants); one built per call would be compiled
per call, and this bound keeps such a mistake from growing the cache without end."""


def _cached(statements: tuple[Executable, ...], dialect: Dialect, build: Callable[[], Any]) -> Any:
    """What `build` makes of these statements for this dialect, made once. The statements are kept
    with it, so that their ids stay their own."""
    key = (tuple(map(id, statements)), dialect.name)
    hit = _COMPILED.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], statements, strict=True)):
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        hit = _COMPILED[key] = (statements, build())
    return hit[1]


def _compiled(statement: Executable, dialect: Dialect) -> _Compiled:
    return _cached((statement,), dialect, lambda: _Compiled(statement, dialect))  # type: ignore[no-any-return]


_PLACEHOLDER = re.compile(r"\$(\d+)")


class _Together:
    """Statements that write, run as one statement on PostgreSQL (a data-modifying WITH: every
    part runs exactly once, all of them on the statement's one snapshot), with one parameter set
    per part. Their placeholders ($1, $2, ...) are renumbered so that the parts' parameters follow
    one another."""

    __slots__ = ("sql", "parts")

    def __init__(self, statements: Sequence[Executable], dialect: Dialect) -> None:
        self.parts = [_compiled(statement, dialect) for statement in statements]
        pieces: list[str] = []
        offset = 0
        for part in self.parts:
            numbers = [int(n) for n in _PLACEHOLDER.findall(part.sql)]
            if part.sql.count("$") != len(numbers) or max(numbers, default=0) != len(part.binds):
                raise ValueError(f"cannot renumber the placeholders of: {part.sql[:80]}")
            pieces.append(_PLACEHOLDER.sub(lambda m, o=offset: f"${int(m.group(1)) + o}", part.sql))  # type: ignore[misc]
            offset += len(part.binds)
        *before, last = pieces
        self.sql = "".join(f"{'WITH' if i == 0 else ','} w{i} AS ({piece}) " for i, piece in enumerate(before)) + last

    def args(self, params: Sequence[Params]) -> list[Any]:
        return [arg for part, values in zip(self.parts, params, strict=True) for arg in part.args(values)]


def _together(statements: tuple[Executable, ...], dialect: Dialect) -> _Together:
    return _cached(statements, dialect, lambda: _Together(statements, dialect))  # type: ignore[no-any-return]


class Statements(ABC):
    """A transaction on one pooled connection; `execute` runs one statement (or one statement for
    each of a list of parameter sets) and returns a `Result`."""

    def __init__(self, engine: AsyncEngine, fairy: Any) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._fairy = fairy
        self.is_sqlite = engine.dialect.name == "sqlite"

    @abstractmethod
    async def execute(self, statement: Executable, params: Params | list[Params] | None = None) -> Result: ...

    @abstractmethod
    async def execute_together(self, statements: tuple[Executable, ...], rows: list[list[Params]]) -> None:
        """Writes that do not depend on one another's effects: `statements`, each run with its
        parameter set of every row (a row: one parameter set per statement). On PostgreSQL all of
        it is one statement run for every row in one round trip, so outside a transaction it is
        atomic on its own (asyncpg's executemany ends with one Sync: one implicit transaction)."""

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def rollback(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """The connection back to the pool (after `commit` or `rollback`)."""


class _SqliteStatements(Statements):
    """sqlite3 calls on the loop's thread; a lock is waited for on a worker thread
    (store/sqlite_inline.py). sqlite3 opens the transaction at the first write, as under SQLAlchemy."""

    def __init__(self, engine: AsyncEngine, fairy: Any) -> None:
        super().__init__(engine, fairy)
        self._inline: InlineConnection = fairy.dbapi_connection
        self._sqlite: sqlite3.Connection = self._inline._connection

    async def execute(self, statement: Executable, params: Params | list[Params] | None = None) -> Result:
        compiled = _compiled(statement, self._dialect)
        try:
            return await self._inline.call_async(self._run, compiled, params or {})
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(compiled.sql, params, error, sqlite3.Error) from error

    def _run(self, compiled: _Compiled, params: Params | list[Params]) -> Result:
        if isinstance(params, list):
            cursor = self._sqlite.executemany(compiled.sql, [compiled.args(p) for p in params])
            return Result([], cursor.rowcount)
        cursor = self._sqlite.execute(compiled.sql, compiled.args(params))
        rows = compiled.rows(cursor.fetchall()) if compiled.returns_rows else []
        return Result(rows, cursor.rowcount)

    async def execute_together(self, statements: tuple[Executable, ...], rows: list[list[Params]]) -> None:
        for index, statement in enumerate(statements):  # a round trip costs nothing here
            await self.execute(statement, [row[index] for row in rows])

    async def commit(self) -> None:
        try:
            await self._inline.call_async(self._sqlite.commit)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance("COMMIT", None, error, sqlite3.Error) from error

    async def rollback(self) -> None:
        if self._sqlite.in_transaction:
            await self._inline.call_async(self._sqlite.rollback)

    async def close(self) -> None:
        self._fairy.close()  # nothing is open any more: the pool's reset has nothing to roll back


class _PostgresStatements(Statements):
    """asyncpg calls on the pooled connection, in a transaction of asyncpg's own."""

    def __init__(self, engine: AsyncEngine, fairy: Any) -> None:
        super().__init__(engine, fairy)
        self._connection = fairy.driver_connection
        self._open = False  # a transaction is open (BEGIN sent, no COMMIT or ROLLBACK yet)
        self._broken = False

    async def begin(self) -> None:
        await self._guarded("BEGIN", None, self._connection.execute, "BEGIN")
        self._open = True

    async def execute(self, statement: Executable, params: Params | list[Params] | None = None) -> Result:
        compiled = _compiled(statement, self._dialect)
        connection = self._connection
        if isinstance(params, list):
            await self._guarded(compiled.sql, params, connection.executemany, compiled.sql,
                                [compiled.args(p) for p in params])
            return Result([], -1)
        args = compiled.args(params or {})
        if compiled.returns_rows:
            rows = await self._guarded(compiled.sql, params, connection.fetch, compiled.sql, *args)
            return Result(compiled.rows(rows), len(rows))
        status = await self._guarded(compiled.sql, params, connection.execute, compiled.sql, *args)
        count = status.rsplit(" ", 1)[-1]
        return Result([], int(count) if count.isdigit() else -1)

    async def execute_together(self, statements: tuple[Executable, ...], rows: list[list[Params]]) -> None:
        together = _together(statements, self._dialect) if len(statements) > 1 else None
        if together is None:
            await self.execute(statements[0], [row[0] for row in rows] if len(rows) > 1 else rows[0][0])
            return
        connection = self._connection
        if len(rows) > 1:
            await self._guarded(together.sql, rows, connection.executemany, together.sql,
                                [together.args(row) for row in rows])
        else:
            await self._guarded(together.sql, rows, connection.execute, together.sql, *together.args(rows[0]))

    async def commit(self) -> None:
        if self._open:
            await self._guarded("COMMIT", None, self._connection.execute, "COMMIT")
            self._open = False

    async def rollback(self) -> None:
        if self._open and not self._broken and not self._connection.is_closed():
            self._open = False
            try:
                await self._connection.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is dropped below instead
                self._broken = True

    async def close(self) -> None:
        if self._broken:
            # SQLAlchemy's answer to a disconnect: this connection, and the pool's older ones
            # (a server restart killed them all), are replaced on their next checkout.
            await greenlet_spawn(self._fairy.invalidate)
            await self._engine.dispose(close=False)
            return
        await greenlet_spawn(self._fairy.close)

    async def _guarded(self, sql: str, params: Any, call: Callable[..., Any], *args: Any) -> Any:
        import asyncpg

        try:
            return await call(*args)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise exc.IntegrityError(sql, params, error) from error
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError, ConnectionError, OSError) as error:
            self._broken = True
            raise exc.OperationalError(sql, params, error, connection_invalidated=True) from error
        except asyncpg.PostgresError as error:
            raise exc.DBAPIError(sql, params, error) from error


async def open_statements(engine: AsyncEngine, *, transaction: bool = True) -> Statements:
    """A pooled connection with a transaction begun (PostgreSQL) or ready to begin at the first
    write (SQLite). Without `transaction`, for reads only: on PostgreSQL each statement then runs
    on its own (under READ COMMITTED it sees the latest commits anyway), without BEGIN and COMMIT."""
    fairy = await engine.raw_connection()
    if engine.dialect.name == "sqlite":
        return _SqliteStatements(engine, fairy)
    statements = _PostgresStatements(engine, fairy)
    if not transaction:
        return statements
    try:
        await statements.begin()
    except BaseException:
        await statements.close()
        raise
    return statements
