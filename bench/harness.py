"""What every benchmark shares: a fresh store per backend, the bot built by `bootstrap()`, an
in-memory Outbox that consumes answers the way an adapter does, and events to feed the core.

Benchmarks go through the real core (`app.core.handle(Command(...), outbox)`): the figures are
what a platform adapter would see, minus the platform.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from bot.bootstrap import App, bootstrap
from bot.events import Actor, Command, Place
from bot.heap import settle_after_startup
from bot.replies import Reply, Sent
from config import Settings, load_settings
from store.db import make_engine
from store.migrate import upgrade

PLATFORM = "bench"
WORKSPACE = "bench-ws"
PG_ENV = "GPTSTORE_BENCH_DATABASE_URL"


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "sqlite" | "postgres"
    url: str


def backends() -> list[str]:
    return ["sqlite"] + (["postgres"] if os.environ.get(PG_ENV) else [])


@asynccontextmanager
async def fresh_store(backend: str) -> AsyncIterator[Backend]:
    """An empty, migrated store: a new SQLite file, or the bench PostgreSQL schema recreated."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="gptstore-bench-")
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        try:
            yield Backend("sqlite", url)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    url = os.environ[PG_ENV]
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
    finally:
        await engine.dispose()
    yield Backend("postgres", url)


def bench_settings(database_url: str, llm_url: str | None, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url, "llm_base_url": llm_url, "llm_api_key": None, "llm_models": [],
        "llm_max_retries": 0, "llm_stall_timeout": 30.0, "llm_timeout": 60.0, "log_level": "WARNING",
        "database_pool_size": 20, "llm_local": False,
        # a burst from one workspace is the point of several benchmarks: keep the bucket, raise its size
        "rate_workspace_per_minute": 1_000_000,
    }
    values.update(extra)
    return load_settings(**values)


@asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[App]:
    app = await bootstrap(settings, migrate=True)  # a no-op: the store is migrated
    settle_after_startup()  # as `gptstore run` does once its adapters are up
    try:
        yield app
    finally:
        await app.aclose()


@dataclass
class Tally:
    """What the outboxes of one run saw, for percentiles and completeness checks."""

    first_reply: list[float] = field(default_factory=list)  # seconds from event to first send
    answered: list[float] = field(default_factory=list)  # seconds from event to the stream's end
    answers: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # non-streamed replies (errors, cards)
    edits: int = 0


class BenchOutbox:
    """An adapter with no platform: posts at once, then edits at most once per `edit_every` s."""

    _ids = itertools.count(1)

    def __init__(self, tally: Tally, started: float, *, edit_every: float = 1.0) -> None:
        self.tally = tally
        self.started = started
        self.edit_every = edit_every
        self._first = True

    async def send(self, reply: Reply) -> Sent:
        now = time.perf_counter()
        if self._first:
            self.tally.first_reply.append(now - self.started)
            self._first = False
        message_id = f"m{next(self._ids)}"
        if reply.stream is None:
            self.tally.texts.append(reply.text)
            return Sent(message_id=message_id)
        parts: list[str] = []
        last_edit = now
        async for chunk in reply.stream:
            parts.append(chunk)
            if (moment := time.perf_counter()) - last_edit >= self.edit_every:
                last_edit = moment
                self.tally.edits += 1
        self.tally.edits += 1  # the final edit
        self.tally.answers.append("".join(parts))
        self.tally.answered.append(time.perf_counter() - self.started)
        return Sent(message_id=message_id)


_events = itertools.count(1)


def ask(user: int, slug: str, prompt: str = "What can you do for me?") -> Command:
    """`/gpt ask` from seeded user `user` in the seeded workspace."""
    actor = Actor(PLATFORM, f"user{user}", f"User {user}")
    place = Place(WORKSPACE, f"c{user % 50}", workspace_name="Bench")
    return Command(actor, place, f"ev{next(_events)}-{time.monotonic_ns()}", "gpt", "ask",
                   {"gpt": slug, "prompt": prompt})


def cpu_seconds() -> float:
    """CPU time of this process (user + system), all threads: SQLite's worker threads included."""
    return time.process_time()
