"""Tracking: invocations recorded while serving, sustained, as the invocation table grows.

Many concurrent "answers" each do what an ask does to the ledger of uses: `tracking.begin` in
one transaction before the LLM is called, and its completion after it answered (the GPT's use
counter included), group-committed with the other answers finishing at that moment
(`Database.grouped`), as bot/commands/invoke.py does. The figure is completed invocations per second over a sustained
run, with the table empty and already holding many rows (indexes grow with it).
Target: ≥ 2 000 / s on SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

from bench import report
from bench.harness import PLATFORM, bench_settings, running_bot
from bench.report import Row
from bench.seed import seed_invocations, seeded_store
from billing import tracking
from store.db import Database
from store.models import Gpt

NAME = "tracking"
WORKERS = 32


async def sustained(db: Database, gpts: list[Gpt], users: int, seconds: float) -> tuple[int, float]:
    keys = itertools.count()
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            i = next(keys)
            gpt = gpts[i % len(gpts)]
            async with db.transaction() as connection:  # as bot/commands/invoke.py writes it, before the LLM call
                invocation = await tracking.begin(
                    connection, gpt=gpt, version_id=gpt.current_version_id or 0, account_id=1 + i % users,
                    platform=PLATFORM, event_key=f"{PLATFORM}:t{i}-{n}-{time.monotonic_ns()}", workspace_id=1,
                    conversation_id=None, model="gpt-4o-mini",
                )
            # as bot/commands/invoke.py records an answer: committed with the others finishing now
            await db.grouped(tracking.finish_writes(invocation, ok=True, prompt_tokens=30, completion_tokens=50))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    return done, time.perf_counter() - started


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [0, 20_000] if quick else [0, 1_000_000]
    seconds = 0.6 if quick else 8.0
    rows: list[Row] = []
    for backend in backends:
        rates: list[float] = []
        for size in sizes:
            async with seeded_store(backend, gpts=1_000) as (store, catalogue), \
                    running_bot(bench_settings(store.url, None)) as app:
                if size:
                    await seed_invocations(app.db, count=size, gpts=catalogue.gpts, users=catalogue.users,
                                           start=(datetime.now(UTC) - timedelta(days=28)).date())
                async with app.db.reader() as session:
                    gpts = [await session.get(Gpt, i) for i in range(1, 101)]
                await sustained(app.db, gpts, catalogue.users, 0.3)  # type: ignore[arg-type]  # warm up
                done, elapsed = await sustained(app.db, gpts, catalogue.users, seconds)  # type: ignore[arg-type]
            rate = done / elapsed
            rates.append(rate)
            label = f"{size:,} rows already".replace(",", " ")
            target = 2_000 if backend == "sqlite" else 0
            if target:
                rows.append(report.at_least(NAME, f"invocations recorded per second, {label}", rate, "/s", target,
                                            backend=backend))
            else:
                rows.append(report.info(NAME, f"invocations recorded per second, {label}", rate, "/s",
                                        backend=backend))
        rows.append(report.info(NAME, "rate with a full table / empty table", rates[-1] / rates[0], "×",
                                backend=backend))
    return rows
