"""Token buckets: the database and the Redis backends follow one model exactly (hypothesis), never
let more through than capacity plus refill, and share their limits between replicas; the real
local Redis is used (db 11), under key prefixes these tests create and delete."""

from __future__ import annotations

import asyncio
import random
import tempfile
import uuid
from pathlib import Path

import pytest
import redis.asyncio as redis_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import policy
from bot.bootstrap import App, bootstrap
from store.db import Database, make_engine
from store.migrate import upgrade
from store.ratelimit import Bucket, DatabaseLimiter, RedisLimiter, refill
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI

REDIS_URL = "redis://127.0.0.1:6379/11"
_SQLITE = Path(tempfile.mkdtemp(prefix="gptstore-buckets-")) / "buckets.db"
_migrated = False


def model(times: list[float], *, capacity: int, per_second: float) -> list[bool]:
    """The specification: a bucket full at first use, one token per use, refilled linearly."""
    tokens: float | None = None
    stamp = 0.0
    decisions = []
    for now in times:
        level = float(capacity) if tokens is None else refill(tokens, stamp, now, capacity=capacity, per_second=per_second)
        if level >= 1.0:
            tokens, stamp = level - 1.0, now if tokens is None else max(now, stamp)
            decisions.append(True)
        else:
            decisions.append(False)
    return decisions


async def _cleanup(prefix: str) -> None:
    client = redis_client.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _replay(limiter: DatabaseLimiter | RedisLimiter, times: list[float], capacity: int, per_second: float) -> list[bool]:
    key = f"k-{uuid.uuid4().hex}"
    return [(await limiter.take(key, capacity=capacity, per_second=per_second, now=now)).allowed for now in times]


arrivals = st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=25).map(
    lambda gaps: [1_700_000_000.0 + sum(gaps[: i + 1]) for i in range(len(gaps))]
)
# a replica's clock may lag another's: arrivals are not always in order
shuffled = st.lists(st.floats(min_value=1_700_000_000, max_value=1_700_000_030, allow_nan=False), max_size=25)
capacities = st.integers(min_value=1, max_value=6)
rates = st.sampled_from([0.1, 0.5, 1.0, 2.0, 1 / 3])


@settings(max_examples=200, deadline=None)
@given(st.one_of(arrivals, shuffled), capacities, rates)
def test_the_model_never_lets_more_through_than_capacity_plus_refill(times: list[float], capacity: int, rate: float) -> None:
    decisions = model(times, capacity=capacity, per_second=rate)
    if times:
        elapsed = max(times) - times[0]
        assert sum(decisions) <= capacity + elapsed * rate + 1e-9
        assert all(decisions[:capacity])  # a fresh bucket lets a burst of `capacity` through


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(arrivals, shuffled), capacities, rates)
def test_database_buckets_follow_the_model(times: list[float], capacity: int, rate: float) -> None:
    async def run() -> list[bool]:
        global _migrated
        db = Database(make_engine(f"sqlite+aiosqlite:///{_SQLITE}"))
        try:
            if not _migrated:
                await upgrade(db.engine)
                _migrated = True
            return await _replay(DatabaseLimiter(db), times, capacity, rate)
        finally:
            await db.dispose()

    assert asyncio.run(run()) == model(times, capacity=capacity, per_second=rate)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(arrivals, shuffled), capacities, rates)
def test_redis_buckets_follow_the_model(times: list[float], capacity: int, rate: float) -> None:
    prefix = f"gptstore-test-{uuid.uuid4().hex}:"

    async def run() -> list[bool]:
        limiter = RedisLimiter(REDIS_URL, prefix=prefix)
        try:
            return await _replay(limiter, times, capacity, rate)
        finally:
            await limiter.aclose()
            await _cleanup(prefix)

    assert asyncio.run(run()) == model(times, capacity=capacity, per_second=rate)


async def test_database_buckets_on_both_stores_and_racing_replicas(database_url: str) -> None:
    """Two replicas (two engines) spend one bucket concurrently: exactly `capacity` uses pass."""
    first, second = (Database(make_engine(database_url)) for _ in range(2))
    try:
        await upgrade(first.engine)
        replicas = [DatabaseLimiter(first), DatabaseLimiter(second)]
        now = 1_700_000_000.0
        results = await asyncio.gather(*(
            replicas[i % 2].take("member:7", capacity=5, per_second=0.01, now=now) for i in range(12)
        ))
        assert sum(r.allowed for r in results) == 5
        refused = [r for r in results if not r.allowed]
        assert all(90 <= r.retry_after <= 100 for r in refused), refused  # one token back after 1/0.01 s
        assert (await replicas[0].take("member:7", capacity=5, per_second=0.01, now=now + 100)).allowed
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_members_and_a_workspaces_buckets_follow_the_model_together(database_url: str) -> None:
    """What every ask does: a token from the member's bucket, then from the workspace's only when
    the member's gave one (on PostgreSQL both in one statement); arrivals partly out of order."""
    db = Database(make_engine(database_url))
    try:
        await upgrade(db.engine)
        limiter = DatabaseLimiter(db)
        rng = random.Random(5)
        times = [1_700_000_000.0 + i * 0.4 + rng.uniform(-0.5, 0.5) for i in range(80)]
        member, workspace = Bucket("member:1", 3, 0.5), Bucket("workspace:1", 6, 0.2)
        outcomes = [await limiter.take_each([member, workspace], now=now) for now in times]
        member_says = model(times, capacity=3, per_second=0.5)
        workspace_says = iter(model([t for t, ok in zip(times, member_says, strict=True) if ok], capacity=6,
                                    per_second=0.2))
        expected = [None if ok and next(workspace_says) else (0 if not ok else 1) for ok in member_says]
        assert [None if outcome is None else outcome[0] for outcome in outcomes] == expected
        assert {0, 1, None} <= set(expected)  # both kinds of refusal happened
        assert all(outcome[1].retry_after > 0 for outcome in outcomes if outcome is not None)
    finally:
        await db.dispose()


async def test_redis_buckets_are_shared_by_replicas() -> None:
    prefix = f"gptstore-test-{uuid.uuid4().hex}:"
    replicas = [RedisLimiter(REDIS_URL, prefix=prefix) for _ in range(2)]
    try:
        results = await asyncio.gather(*(
            replicas[i % 2].take("workspace:3", capacity=4, per_second=0.5) for i in range(10)
        ))  # the Redis server's clock: both replicas agree on it
        assert sum(r.allowed for r in results) == 4
    finally:
        for limiter in replicas:
            await limiter.aclose()
        await _cleanup(prefix)


@pytest.fixture
async def redis_apps(database_url: str, fake_llm: FakeOpenAI):  # type: ignore[no-untyped-def]
    """Two replicas of the bot on one store and one Redis, with a per-member limit of 2 a minute."""
    prefix = f"gptstore-test-{uuid.uuid4().hex}:"
    settings = make_settings(database_url, fake_llm.base_url, redis_url=REDIS_URL, rate_member_per_minute=2)
    apps: list[App] = [await bootstrap(settings, migrate=True), await bootstrap(settings, migrate=True)]
    for app in apps:
        limiter = policy.limiter(app.services)
        assert isinstance(limiter, RedisLimiter)  # GPTSTORE_REDIS_URL chose Redis
        limiter.prefix = prefix
    yield apps
    for app in apps:
        await app.aclose()
    await _cleanup(prefix)


async def test_members_are_limited_across_replicas(redis_apps: list[App]) -> None:
    one, two = Terminal(redis_apps[0]), Terminal(redis_apps[1])
    await one.run(":as alice", ":dm", "/gpt create", "fields", "Echo Bot", "Repeats you.", "You repeat the user.",
                  "skip", "1", "1", "public", "publish")
    out = await one.run(":as bob", ":in #general", "/gpt ask echo-bot one", "/gpt ask echo-bot two")
    assert out.count("Answer 1:") == 2
    out = await two.run(":as bob", ":in #general", "/gpt ask echo-bot three")
    assert "You are sending questions too fast. Please wait 30 seconds." in out and "Answer 1" not in out
    out = await two.run(":as carol", ":in #general", "/gpt ask echo-bot hello")
    assert "Answer 1: hello" in out  # another member has a bucket of their own
