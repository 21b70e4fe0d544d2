"""Fill a store fast: accounts, identities, a workspace, and a catalogue of GPTs with versions.

Rows go in with SQLAlchemy Core `executemany` in one transaction (100 000 GPTs in seconds), not
through the ORM one by one. Names and descriptions are drawn from a vocabulary with a Zipf-like
distribution, so that a search for a common word matches a fifth of the catalogue and one for a rare
word a handful, as in a real catalogue. Everything is deterministic (seeded random).
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import accumulate
from pathlib import Path

from sqlalchemy import insert, text

from bench.harness import PLATFORM, WORKSPACE, Backend, fresh_store
from store.db import Database, make_engine
from store.models import Account, Category, Gpt, GptVersion, Identity, Workspace

TOPICS = (
    "tutor writing code python math algebra history travel recipe fitness coach story poem legal "
    "email resume interview science physics chemistry biology music guitar design marketing sales "
    "startup finance budget tax language french spanish german japanese chess game dungeon quiz "
    "study exam essay grammar translator summary research paper data sql excel chart garden plant "
    "pet dog cat health sleep meditation yoga running diet cooking baking wine coffee movie book"
).split()
_SYLLABLES = "ka lo mi ne ru sa te vi zo ba de fi gu ho ja ku ly mo na pe qi ro su ta".split()
CHUNK = 5_000


def vocabulary(size: int = 4_000) -> list[str]:
    rng = random.Random(7)
    words = list(TOPICS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass(frozen=True, slots=True)
class Catalogue:
    gpts: int
    creators: int
    users: int
    slugs: list[str]
    words: list[str]


class _Zipf:
    def __init__(self, words: list[str], rng: random.Random) -> None:
        self.words = words
        self.rng = rng
        # Zipf–Mandelbrot (1 / (rank + 10)): the commonest word is in about one GPT in five
        self.cum = list(accumulate(1.0 / (rank + 10) for rank in range(len(words))))

    def pick(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)


async def seed(db: Database, *, gpts: int, creators: int = 0, users: int = 1_000) -> Catalogue:
    """`users` askers (platform ids user0…), `creators` creators, one workspace and `gpts` GPTs."""
    creators = creators or max(1, gpts // 50)
    rng = random.Random(42)
    words = vocabulary()
    zipf = _Zipf(words, rng)
    now = datetime.now(UTC)
    categories = [c.value for c in Category]
    accounts = [{"id": i + 1, "display_name": f"User {i}", "locale": "en", "created_at": now}
                for i in range(users + creators)]
    identities = [{"id": i + 1, "platform": PLATFORM, "external_id": f"user{i}", "account_id": i + 1,
                   "display_name": f"User {i}"} for i in range(users + creators)]
    gpt_rows: list[dict[str, object]] = []
    version_rows: list[dict[str, object]] = []
    slugs: list[str] = []
    taken: set[str] = set()
    for i in range(gpts):
        name = " ".join(w.capitalize() for w in zipf.pick(rng.randint(2, 3)))
        if name.lower() in taken:
            name = f"{name[:32]} {i}"
        taken.add(name.lower())
        slug = "-".join(name.lower().split())[:40]
        description = " ".join(zipf.pick(rng.randint(8, 20)))[:300]
        category = categories[i % len(categories)]
        gpt_id = i + 1
        creator = users + 1 + (i % creators)
        slugs.append(slug)
        gpt_rows.append({
            "id": gpt_id, "slug": slug, "name_key": " ".join(name.casefold().split()), "creator_id": creator,
            "status": "published", "visibility": "public", "category": category, "name": name,
            "description": description, "current_version_id": gpt_id, "version_count": 1,
            "remixed_from_id": None, "uses": int(rng.paretovariate(1.2)) - 1, "rating_sum": 0,
            "rating_count": 0, "thumbs_up": 0, "thumbs_down": 0, "created_at": now, "updated_at": now,
            "published_at": now,
        })
        version_rows.append({
            "id": gpt_id, "gpt_id": gpt_id, "number": 1, "name": name, "description": description,
            "instructions": f"You are {name}. {description}", "starters": ["Where do I start?"],
            "category": category, "model": "gpt-4o-mini", "created_at": now,
        })
    async with db.session() as session:
        for table, rows in ((Account, accounts), (Identity, identities), (Gpt, gpt_rows),
                            (GptVersion, version_rows)):
            for start in range(0, len(rows), CHUNK):
                await session.execute(insert(table), rows[start:start + CHUNK])
        await session.execute(insert(Workspace), [{"id": 1, "platform": PLATFORM, "external_id": WORKSPACE,
                                                   "name": "Bench", "active": True, "created_at": now}])
    await _fix_sequences(db, ("account", "identity", "gpt", "gptversion", "workspace"))
    await analyze(db)
    return Catalogue(gpts, creators, users, slugs, words)


async def seed_invocations(db: Database, *, count: int, gpts: int, users: int, start: date, days: int = 28) -> None:
    """`count` finished invocations over `days` days from `start`, spread over users and GPTs.

    Generated by the database itself (a recursive CTE on SQLite, generate_series on PostgreSQL):
    millions of rows in seconds, with no row crossing the Python boundary. One in twenty failed.
    """
    columns = ("event_key, gpt_id, version_id, account_id, workspace_id, conversation_id, platform, status, "
               "is_preview, is_creator, error_code, model, latency_ms, prompt_tokens, completion_tokens, day, "
               "created_at, finished_at")
    n = "i" if db.is_sqlite else "i::bigint"  # generate_series gives int4: i × 104729 would overflow it
    gpt = f"1 + ({n} * 7919) % {gpts}"
    account = f"1 + ({n} * 104729) % {users}"
    status = "CASE WHEN i % 20 = 0 THEN 'error' ELSE 'ok' END"
    if db.is_sqlite:
        day = f"date('{start.isoformat()}', '+' || (i % {days}) || ' days')"
        sql = f"""WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {count})
            INSERT INTO invocation ({columns})
            SELECT NULL, {gpt}, {gpt}, {account}, 1, NULL, '{PLATFORM}', {status}, 0, 0, NULL, 'gpt-4o-mini',
                   900, 30, 50, {day}, {day} || ' 12:00:00.000000', {day} || ' 12:00:01.000000' FROM seq"""
    else:
        day = f"(DATE '{start.isoformat()}' + (i % {days}))"
        sql = f"""INSERT INTO invocation ({columns})
            SELECT NULL, {gpt}, {gpt}, {account}, 1, NULL, '{PLATFORM}', {status}, false, false, NULL,
                   'gpt-4o-mini', 900, 30, 50, {day}, {day} + TIME '12:00' AT TIME ZONE 'UTC',
                   {day} + TIME '12:00:01' AT TIME ZONE 'UTC' FROM generate_series(1, {count}) AS i"""
    async with db.session() as session:
        await session.execute(text(sql))
    await analyze(db)


async def _fix_sequences(db: Database, tables: tuple[str, ...]) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the seeded rows."""
    if db.is_sqlite:
        return
    async with db.session() as session:
        for table in tables:
            await session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            ))


async def analyze(db: Database) -> None:
    """Fresh planner statistics, as a long-running store has."""
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


_TEMPLATES: dict[tuple[int, int, int], tuple[Path, Catalogue]] = {}
_FOLDER: list[Path] = []


@asynccontextmanager
async def seeded_store(backend: str, *, gpts: int, users: int = 1_000, creators: int = 0
                       ) -> AsyncIterator[tuple[Backend, Catalogue]]:
    """A fresh store holding a seeded catalogue. On SQLite each catalogue is seeded once per run
    and copied for every store that asks for it (a file copy instead of seconds of inserts)."""
    if backend != "sqlite":
        async with fresh_store(backend) as store:
            db = Database(make_engine(store.url))
            try:
                catalogue = await seed(db, gpts=gpts, users=users, creators=creators)
            finally:
                await db.dispose()
            yield store, catalogue
        return
    key = (gpts, users, creators)
    if key not in _TEMPLATES:
        if not _FOLDER:
            _FOLDER.append(Path(tempfile.mkdtemp(prefix="gptstore-bench-templates-")))
            atexit.register(shutil.rmtree, _FOLDER[0], True)
        async with fresh_store("sqlite") as store:
            db = Database(make_engine(store.url))
            try:
                catalogue = await seed(db, gpts=gpts, users=users, creators=creators)
            finally:
                await db.dispose()  # the last connection out checkpoints the WAL into the file
            template = _FOLDER[0] / f"catalogue-{gpts}-{users}-{creators}.db"
            shutil.copyfile(store.url.split(":///", 1)[1], template)
        _TEMPLATES[key] = (template, catalogue)
    template, catalogue = _TEMPLATES[key]
    folder = Path(tempfile.mkdtemp(prefix="gptstore-bench-"))
    try:
        shutil.copyfile(template, folder / "bench.db")
        yield Backend("sqlite", f"sqlite+aiosqlite:///{folder / 'bench.db'}"), catalogue
    finally:
        shutil.rmtree(folder, ignore_errors=True)
