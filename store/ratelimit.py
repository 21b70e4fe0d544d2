"""Token buckets shared by every replica: in the database, or in Redis when one is configured.

A bucket holds at most `capacity` tokens and gains `per_second` tokens per second; a use takes
one. Both backends implement the same arithmetic (`refill`) atomically where all replicas see it:
the database in one conditional UPDATE (no read-modify-write, so two replicas cannot both spend
the last token), Redis in one Lua script. `now` can be given (tests); otherwise the database
backend uses this machine's clock and the Redis backend the Redis server's clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import text
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


# `refill` in SQL, then one token taken, only if there is one: a single statement, so two replicas
# never both spend the last token (PostgreSQL re-checks the WHERE on the row it waited for). Plain
# SQL text: building the expression with SQLAlchemy's constructs cost three times the CPU per use.
_LEVEL = """(CASE WHEN tokens + (CASE WHEN :now > stamp THEN :now - stamp ELSE 0.0 END) * :rate > :cap
            THEN :cap ELSE tokens + (CASE WHEN :now > stamp THEN :now - stamp ELSE 0.0 END) * :rate END)"""
_SPEND = text(f"""UPDATE ratebucket SET tokens = {_LEVEL} - 1.0,
                  stamp = CASE WHEN :now > stamp THEN :now ELSE stamp END
                  WHERE key = :key AND {_LEVEL} >= 1.0""")


_CREATE = text("INSERT INTO ratebucket (key, tokens, stamp) VALUES (:key, :tokens, :stamp) ON CONFLICT (key) DO NOTHING")
_LEVEL_NOW = text("SELECT tokens, stamp FROM ratebucket WHERE key = :key")


class DatabaseLimiter:
    """Buckets as rows of `ratebucket`; the buckets of one use are spent in one transaction."""

    def __init__(self, db: Database, prefix: str = "") -> None:
        self.db = db
        self.prefix = prefix

    async def take(self, key: str, *, capacity: int, per_second: float, now: float | None = None) -> Decision:
        refused = await self.take_each([Bucket(key, capacity, per_second)], now=now)
        return refused[1] if refused else Decision(True)

    async def take_each(self, buckets: Sequence[Bucket], *, now: float | None = None) -> tuple[int, Decision] | None:
        now = time.time() if now is None else now
        # Every ask of a workspace updates its bucket's row, so the row lock is held until the
        # commit: without waiting for the WAL flush (PostgreSQL), asks of one busy workspace do not
        # queue behind each other's fsync. A bucket is a rate, not a record: a crash can only hand
        # back the tokens of its last moments.
        async with self.db.transaction(no_flush_wait=True) as session:  # plain statements: every ask pays for this
            for index, bucket in enumerate(buckets):
                decision = await self._take(session, bucket, now)
                if not decision.allowed:
                    return index, decision
        return None

    async def _take(self, session: Statements, bucket: Bucket, now: float) -> Decision:
        if bucket.capacity < 1:
            return Decision(False, float("inf"))
        key, capacity, per_second = (self.prefix + bucket.key)[:120], bucket.capacity, bucket.per_second
        values = {"key": key, "now": now, "rate": float(per_second), "cap": float(capacity)}
        if (await session.execute(_SPEND, values)).rowcount:  # type: ignore[attr-defined]
            return Decision(True)
        created = await session.execute(_CREATE, {"key": key, "tokens": float(capacity) - 1.0, "stamp": now})
        if created.rowcount:  # type: ignore[attr-defined]
            return Decision(True)
        # Another replica created the bucket after our UPDATE's snapshot (PostgreSQL, READ
        # COMMITTED): a new statement sees it, so spend from it now rather than refuse.
        if (await session.execute(_SPEND, values)).rowcount:  # type: ignore[attr-defined]
            return Decision(True)
        row = (await session.execute(_LEVEL_NOW, {"key": key})).first()
        level_now = refill(row[0], row[1], now, capacity=capacity, per_second=per_second) if row else 0.0
        return Decision(False, max(0.0, (1.0 - level_now) / per_second) if per_second > 0 else float("inf"))

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
