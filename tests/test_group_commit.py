"""The group commit (store.db.GroupCommit) on SQLite and PostgreSQL: the writes handed in at the
same moment are committed together, each task's writes whole or not at all, and a write that
fails fails only its own task, whether the group's writes share one shape (on PostgreSQL one
statement for all of them, without a transaction around it) or several."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from store.db import Database, Writes, typed_sql
from store.models import SeenEvent
from store.ratelimit import RateBucket

_SEEN = typed_sql("INSERT INTO seenevent (key, created_at) VALUES (:key, :created_at)", SeenEvent)
_BUCKET = typed_sql("INSERT INTO ratebucket (key, tokens, stamp) VALUES (:key, :tokens, :stamp)", RateBucket)
WHEN = datetime(2026, 12, 7, tzinfo=UTC)


def both(key: str) -> Writes:
    return [(_SEEN, {"key": key, "created_at": WHEN}), (_BUCKET, {"key": key, "tokens": 1.0, "stamp": 0.0})]


async def written(db: Database) -> tuple[list[str], list[str]]:
    async with db.reader() as session:
        seen = sorted((await session.execute(select(col(SeenEvent.key)))).scalars())
        buckets = sorted((await session.execute(select(col(RateBucket.key)))).scalars())
    return seen, buckets


async def test_writes_of_one_shape_go_in_together_and_a_failing_one_fails_alone(db: Database) -> None:
    await db.grouped([(_BUCKET, {"key": "held", "tokens": 1.0, "stamp": 0.0})])
    outcomes = await asyncio.gather(*(db.grouped(both(key)) for key in ("a", "held", "b")), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [type(None), IntegrityError, type(None)]
    # the failed task's first statement, which went through, is not kept either
    assert await written(db) == (["a", "b"], ["a", "b", "held"])


async def test_writes_of_several_shapes_go_in_together_and_a_failing_one_fails_alone(db: Database) -> None:
    await db.grouped(both("taken"))
    tasks: list[Writes] = [
        both("a"),
        [(_SEEN, {"key": "c", "created_at": WHEN})],
        [(_BUCKET, {"key": "d", "tokens": 1.0, "stamp": 0.0}), (_SEEN, {"key": "taken", "created_at": WHEN})],
        both("e"),
    ]
    outcomes = await asyncio.gather(*(db.grouped(writes) for writes in tasks), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [type(None), type(None), IntegrityError, type(None)]
    assert await written(db) == (["a", "c", "e", "taken"], ["a", "e", "taken"])  # no "d": its task failed
