"""A soak: mixed traffic from several members at once, LLM faults injected at random, then a
reward close. At the end every use is accounted for (ok, error or blocked, none pending), the
counts match what members saw, memory and open connections are flat, and the ledger balances.

GPTSTORE_SOAK_SECONDS sets the length (CI runs the short default; 1800 is the full soak)."""

from __future__ import annotations

import asyncio
import os
import random
import resource
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from billing import ledger
from billing.close import close_period
from billing.periods import Bounds
from bot.bootstrap import bootstrap
from store.models import Account, Invocation, utcnow
from tests.billing_support import opt_in, period, rules
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI

SECONDS = float(os.environ.get("GPTSTORE_SOAK_SECONDS", "12"))
WORKERS = 6
GPTS = ("soak-one", "soak-two", "soak-three")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


async def test_soak_with_random_faults(database_url: str, fake_llm: FakeOpenAI) -> None:
    app = await bootstrap(make_settings(database_url, fake_llm.base_url, rate_member_per_minute=0,
                                        rate_workspace_per_minute=0, llm_stall_timeout=0.5), migrate=True)
    started = utcnow()
    seen = {"answered": 0, "failed": 0}
    try:
        creator = Terminal(app)
        for index, slug in enumerate(GPTS):
            await creator.run(f":as creator{index}", ":dm", "/gpt create", "fields", slug.replace("-", " ").title(),
                              "Soak test GPT.", "You answer briefly.", "skip", "1", "1", "public", "publish")

        rng = random.Random(7)
        deadline = asyncio.get_running_loop().time() + SECONDS
        samples: list[float] = []

        async def member(number: int) -> None:
            t = Terminal(app)
            await t.run(f":as member{number}", ":in #general")
            while asyncio.get_running_loop().time() < deadline:
                roll = rng.random()
                if roll < 0.55:
                    fault = rng.random()
                    if fault < 0.08:
                        fake_llm.fail_next(503, times=2)
                    elif fault < 0.12:
                        fake_llm.drop_next(2)
                    elif fault < 0.14:
                        fake_llm.malformed_next(2)
                    out = await t.run(f"/gpt ask {rng.choice(GPTS)} question {rng.randrange(1000)}")
                    if "· by Creator" in out:
                        seen["failed" if "⚠️" in out else "answered"] += 1
                elif roll < 0.7:
                    await t.run(f"/gpt search soak {rng.choice(['one', 'two', 'three', 'x'])}")
                elif roll < 0.8:
                    await t.run(f"/gpt info {rng.choice(GPTS)}")
                elif roll < 0.9:
                    await t.run(f"/gpt rate {rng.choice(GPTS)} {rng.randint(1, 5)}")
                else:
                    await t.run("/gpt top")

        async def sampler() -> None:
            while asyncio.get_running_loop().time() < deadline:
                samples.append(rss_mb())
                await asyncio.sleep(SECONDS / 10)

        await asyncio.gather(sampler(), *(member(n) for n in range(WORKERS)))

        async with app.db.reader() as session:
            counts = dict((await session.execute(
                select(Invocation.status, func.count()).group_by(Invocation.status)  # type: ignore[arg-type]
            )).all())
        assert "pending" not in counts, counts
        assert set(counts) <= {"ok", "error", "blocked"}
        assert counts.get("ok", 0) == seen["answered"] and counts.get("error", 0) == seen["failed"]
        assert seen["answered"] > 20 and seen["failed"] > 0
        assert app.db.engine.pool.checkedout() == 0  # every connection went back to the pool
        later = samples[len(samples) // 3:]
        assert max(later) - later[0] < 40, samples  # flat after warm-up, not growing with traffic

        async with app.db.reader() as session:
            creators = (await session.execute(
                select(Account.id).where(col(Account.display_name).startswith("Creator"))
            )).scalars().all()
        for account_id in creators:
            await opt_in(app.db, account_id)
        bounds = Bounds(started - timedelta(minutes=1), utcnow() + timedelta(seconds=1))
        period_id = await period(app.db, bounds)
        plan = await close_period(app.db, rules(), period_id, now=bounds.end + timedelta(seconds=1))
        assert plan.total_points > 0
        assert sum(line.share for line in plan.creators) + plan.returned == plan.pool  # to the micro-unit
        async with app.db.reader() as session:
            assert await ledger.unbalanced(session) == []
            assert sum((await ledger.balances(session)).values()) == 0
    finally:
        await app.aclose()
