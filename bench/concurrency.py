"""Concurrency: N `/gpt ask` at once through the core; the LLM takes 500 ms, then streams 50 tokens.

Target: 1 000 asks all answered in ≤ 1.5 s, none lost (every invocation recorded `ok`, every
answer complete). The fake LLM runs in its own process; the bot's CPU time is reported too,
because on a 2-core machine that, not waiting, is what decides whether the target holds.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select
from sqlmodel import col

from bench import report
from bench.fakellm import FakeLLMProcess, fixed_answer
from bench.harness import BenchOutbox, Tally, ask, bench_settings, cpu_seconds, running_bot
from bench.report import Row
from bench.seed import seeded_store
from store.models import Invocation

NAME = "concurrency"
LATENCY = 0.5
TOKENS = 50
TARGET_S = 1.5


async def burst(app, slugs: list[str], users: int, n: int, offset: int = 0) -> tuple[float, float, Tally]:  # type: ignore[no-untyped-def]
    tally = Tally()
    events = [ask((offset + i) % users, slugs[(offset + i) * 7 % len(slugs)]) for i in range(n)]
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(app.core.handle(event, BenchOutbox(tally, started)) for event in events))
    wall = time.perf_counter() - started
    return wall, cpu_seconds() - cpu0, tally


async def count_ok(app) -> int:  # type: ignore[no-untyped-def]
    async with app.db.reader() as session:
        query = select(func.count()).select_from(Invocation).where(col(Invocation.status) == "ok")
        return int((await session.execute(query)).scalar_one())


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [25, 50] if quick else [250, 500, 1000]
    rows: list[Row] = []
    expected = fixed_answer(TOKENS)
    async with FakeLLMProcess(latency=LATENCY, tokens=TOKENS) as llm:
        for backend in backends:
            async with seeded_store(backend, gpts=1_000, users=1_000) as (store, catalogue):
                settings = bench_settings(store.url, llm.base_url)
                async with running_bot(settings) as app:
                    await burst(app, catalogue.slugs, catalogue.users, 20, offset=max(sizes))  # warm up
                    done = await count_ok(app)
                    for n in sizes:
                        wall, cpu, tally = await burst(app, catalogue.slugs, catalogue.users, n)
                        ok = await count_ok(app)
                        complete = sum(1 for answer in tally.answers if answer == expected)
                        recorded = ok - done
                        done = ok
                        rows += [
                            report.at_most(NAME, f"{n} asks at once: all answered", wall, "s", TARGET_S,
                                           backend=backend),
                            report.exactly(NAME, f"{n} asks: complete answers", complete, "answers", n,
                                           backend=backend),
                            report.exactly(NAME, f"{n} asks: invocations recorded ok", recorded, "rows", n,
                                           backend=backend),
                            report.info(NAME, f"{n} asks: bot CPU per ask", cpu / n * 1000, "ms", backend=backend),
                        ]
                        if tally.texts:
                            rows.append(report.info(NAME, f"{n} asks: other replies", len(tally.texts), "replies",
                                                    backend=backend, note=tally.texts[0][:60]))
    return rows
