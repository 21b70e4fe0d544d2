"""Token buckets shared by every replica: in the database, or in Redis when one is configured.

A bucket holds at most `capacity` tokens and gains `per_second` tokens per second; a use takes
one. Both backends implement the same arithmetic (`refill`) atomically where all replicas see it:
the database in one conditional UPDATE (no read-modify-write, so two replicas cannot both spend
the last token), Redis in one Lua script. `now` can be given (tests); otherwise the database
backend uses this machine's clock and the Redis backend the Redis server's clock.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Float, String, TextClause, bindparam, text
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from store.db import Database
    from store.statements import Statements


class RateBucket(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=120)
    tokens: float
    stamp: float  # seconds since the epoch of the last refill


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one token is back, when refused


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    capacity: int  # at least 1
    per_second: float


class Limiter(Protocol):
    async def take(self, key: str, *, capacity: int, per_second: float, now: float | None = None) -> Decision: ...

    async def take_each(self, buckets: Sequence[Bucket], *, now: float | None = None) -> tuple[int, Decision] | None:
        """A token from each bucket in turn; at the first refusal, (its index, the refusal), and the
        buckets after it are left alone. None when every bucket gave one."""
        ...

    async def aclose(self) -> None: ...


def refill(tokens: float, stamp: float, now: float, *, capacity: int, per_second: float) -> float:
    """The bucket's level at `now` (a clock going backwards adds nothing)."""
    return min(float(capacity), tokens + max(0.0, now - stamp) * per_second)


# `refill` in SQL, then one token taken, only if there is one: a single statement (an upsert: a
# bucket seen for the first time is created full, less the token), so two replicas never both
# spend the last token (PostgreSQL re-checks the WHERE on the row it waited for). Plain SQL text:
# building the expression with SQLAlchemy's constructs cost three times the CPU per use.
def _level(i: int) -> str:
    gained = f"(CASE WHEN :now > ratebucket.stamp THEN :now - ratebucket.stamp ELSE 0.0 END) * :rate{i}"
    return f"(CASE WHEN ratebucket.tokens + {gained} > :cap{i} THEN :cap{i} ELSE ratebucket.tokens + {gained} END)"


def _spend(i: int, rows: str) -> str:
    return (f"INSERT INTO ratebucket (key, tokens, stamp) {rows} ON CONFLICT (key) DO UPDATE SET "
            f"tokens = {_level(i)} - 1.0, stamp = CASE WHEN :now > ratebucket.stamp THEN :now ELSE ratebucket.stamp END "
            f"WHERE {_level(i)} >= 1.0")


def _typed(sql: str, count: int) -> TextClause:
    return text(sql).bindparams(
        bindparam("now", type_=Float),
        *(bindparam(f"{name}{i}", type_=kind) for i in range(count)
          for name, kind in (("key", String()), ("rate", Float()), ("cap", Float())))
    )


_SPEND = _typed(_spend(0, "VALUES (:key0, :cap0 - 1.0, :now)"), 1)


@functools.cache
def _spend_each(count: int) -> TextClause:
    """PostgreSQL: `count` buckets spent in one statement (a data-modifying WITH), each only if the
    ones before it gave a token; the row says which did."""
    parts = [f"s0 AS ({_spend(0, 'VALUES (:key0, :cap0 - 1.0, :now)')} RETURNING 1)"] + [
        f"s{i} AS ({_spend(i, f'SELECT :key{i}, :cap{i} - 1.0, :now WHERE EXISTS (SELECT 1 FROM s{i - 1})')} RETURNING 1)"
        for i in range(1, count)
    ]
    counts = ", ".join(f"(SELECT count(*) FROM s{i})" for i in range(count))
    return _typed(f"WITH {', '.join(parts)} SELECT {counts}", count)


_LEVEL_NOW = text("SELECT tokens, stamp FROM ratebucket WHERE key = :key")


class DatabaseLimiter:
    """Buckets as rows of `ratebucket`. On PostgreSQL the buckets of one use are spent in one
    statement, outside a transaction: one round trip whose commit waits for the disk (0.36-0.42 ms
    here) costs less than a transaction that does not wait (BEGIN, a statement per bucket, COMMIT:
    0.73-0.78 ms for two), and a bucket's row is locked only while the server works on it, never
    across a round trip to the bot. On SQLite, one transaction."""

    def __init__(self, db: Database, prefix: str = "") -> None:
        self.db = db
        self.prefix = prefix

    async def take(self, key: str, *, capacity: int, per_second: float, now: float | None = None) -> Decision:
        refused = await self.take_each([Bucket(key, capacity, per_second)], now=now)
        return refused[1] if refused else Decision(True)

    async def take_each(self, buckets: Sequence[Bucket], *, now: float | None = None) -> tuple[int, Decision] | None:
        if not buckets:
            return None
        now = time.time() if now is None else now
        values: dict[str, object] = {"now": now}
        for i, bucket in enumerate(buckets):
            values.update({f"key{i}": (self.prefix + bucket.key)[:120], f"rate{i}": float(bucket.per_second),
                           f"cap{i}": float(bucket.capacity)})
        empty = next((i for i, bucket in enumerate(buckets) if bucket.capacity < 1), len(buckets))
        async with self.db.autocommit() as session:  # plain statements: every ask pays for this
            if self.db.is_sqlite or empty < len(buckets):
                given = await self._one_by_one(session, values, min(empty, len(buckets)))
            else:
                given = list((await session.execute(_spend_each(len(buckets)), values)).one())
            refused = next((i for i, count in enumerate(given) if not count), empty if empty < len(buckets) else None)
            if refused is None:
                return None
            bucket = buckets[refused]
            if bucket.capacity < 1:
                return refused, Decision(False, float("inf"))
            row = (await session.execute(_LEVEL_NOW, {"key": values[f"key{refused}"]})).first()
        level = refill(row[0], row[1], now, capacity=bucket.capacity, per_second=bucket.per_second) if row else 0.0
        wait = max(0.0, (1.0 - level) / bucket.per_second) if bucket.per_second > 0 else float("inf")
        return refused, Decision(False, wait)

    async def _one_by_one(self, session: Statements, values: dict[str, object], count: int) -> list[int]:
        """The first `count` buckets in turn, up to the first that has no token."""
        given: list[int] = []
        for i in range(count):
            one = {"now": values["now"], "key0": values[f"key{i}"], "rate0": values[f"rate{i}"], "cap0": values[f"cap{i}"]}
            given.append((await session.execute(_SPEND, one)).rowcount)  # type: ignore[attr-defined]
            if not given[-1]:
                break
        return given

    async def aclose(self) -> None:
        return None


# KEYS[1] the bucket; ARGV capacity, per_second, now (negative: use the server's clock)
_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1])
local stamp = tonumber(held[2])
if tokens == nil then
  tokens = capacity
  stamp = now
end
local level = tokens + math.max(0, now - stamp) * rate
if level > capacity then level = capacity end
if level < 1 then
  if rate > 0 then return {0, string.format('%.17g', (1 - level) / rate)} end
  return {0, '-1'}
end
-- like the database backend: only a spent token changes the bucket (%.17g round-trips a double)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', level - 1), 'stamp', string.format('%.17g', math.max(now, stamp)))
if rate > 0 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 60000)
end
return {1, '0'}
"""


class RedisLimiter:
    """Buckets as Redis hashes under `prefix`, updated by one script call (atomic on the server)."""

    def __init__(self, url: str, prefix: str = "gptstore:rl:") -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url)
        self.prefix = prefix
        self._script = self.client.register_script(_LUA)

    async def take_each(self, buckets: Sequence[Bucket], *, now: float | None = None) -> tuple[int, Decision] | None:
        for index, bucket in enumerate(buckets):
            decision = await self.take(bucket.key, capacity=bucket.capacity, per_second=bucket.per_second, now=now)
            if not decision.allowed:
                return index, decision
        return None

    async def take(self, key: str, *, capacity: int, per_second: float, now: float | None = None) -> Decision:
        if capacity < 1:
            return Decision(False, float("inf"))
        allowed, wait = await self._script(
            keys=[self.prefix + key], args=[capacity, repr(float(per_second)), repr(-1.0 if now is None else now)]
        )
        seconds = float(wait)
        return Decision(bool(int(allowed)), float("inf") if seconds < 0 else seconds)

    async def aclose(self) -> None:
        await self.client.aclose()


def make_limiter(db: Database, redis_url: str | None) -> Limiter:
    return RedisLimiter(redis_url) if redis_url else DatabaseLimiter(db)
