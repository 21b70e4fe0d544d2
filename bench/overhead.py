"""Overhead: one `/gpt ask` at a time through the core, with a zero-latency LLM.

The figure is the time an ask takes that is not the LLM's: the wall time of `Core.handle` minus
the median time the fake LLM takes to serve the same streamed answer to a bare socket client.
Measured with catalogues of growing size, because a big community must not make an ask slower.
Target: p50 ≤ 2 ms, p99 ≤ 10 ms. On PostgreSQL it also counts the statements an ask sends (asyncpg's
query logger), each a round trip: what most of an ask's time there is made of.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import report
from bench.fakellm import FakeLLMProcess, raw_round_trips
from bench.harness import BenchOutbox, Tally, ask, bench_settings, running_bot
from bench.report import Row, percentile
from bench.seed import seeded_store

NAME = "overhead"
TOKENS = 20


class StatementCount:
    """Statements sent to PostgreSQL through the engine's pooled connections (asyncpg's query
    logger, added to each connection as it is checked out)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sent = 0
        event.listen(engine.sync_engine, "checkout", self._watch)

    def _watch(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(self._count)  # a set: added once

    def _count(self, _query: Any) -> None:
        self.sent += 1


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    asks, warm = (40, 10) if quick else (2_000, 50)
    rows: list[Row] = []
    async with FakeLLMProcess(latency=0.0, tokens=TOKENS) as llm:
        await raw_round_trips(llm.base_url, 50)
        llm_time = percentile(await raw_round_trips(llm.base_url, asks), 50)
        rows.append(report.info(NAME, "LLM alone: streamed answer to a bare socket, p50", llm_time * 1000, "ms",
                                note=f"{TOKENS} tokens"))
        for backend in backends:
            p50s: list[float] = []
            for size in sizes:
                async with seeded_store(backend, gpts=size) as (store, catalogue), \
                        running_bot(bench_settings(store.url, llm.base_url)) as app:
                    tally = Tally()
                    times: list[float] = []
                    count = StatementCount(app.db.engine) if backend == "postgres" else None
                    for i in range(asks + warm):
                        if i == warm and count is not None:
                            count.sent = 0
                        command = ask(i % catalogue.users, catalogue.slugs[i * 7919 % size])
                        started = time.perf_counter()
                        await app.core.handle(command, BenchOutbox(tally, started))
                        if i >= warm:  # the first ones warm caches and connections
                            times.append(time.perf_counter() - started)
                    complete = sum(1 for answer in tally.answers if len(answer.split()) == TOKENS)
                p50 = max(0.0, percentile(times, 50) - llm_time) * 1000
                p99 = max(0.0, percentile(times, 99) - llm_time) * 1000
                p50s.append(p50)
                label = f"{size:,} GPTs".replace(",", " ")
                rows += [
                    report.at_most(NAME, f"ask overhead p50, {label}", p50, "ms", 2, backend=backend),
                    report.at_most(NAME, f"ask overhead p99, {label}", p99, "ms", 10, backend=backend),
                ]
                if count is not None:
                    rows.append(report.info(NAME, f"statements sent per ask, {label}", count.sent / asks, "statements",
                                            backend=backend, note="each a round trip"))
                if complete != asks + warm:
                    rows.append(report.exactly(NAME, f"complete answers, {label}", complete, "answers", asks + warm,
                                               backend=backend, note=(tally.texts or ["?"])[0][:60]))
            rows.append(report.info(NAME, f"p50 growth, catalogue ×{sizes[-1] // sizes[0]}", p50s[-1] / max(p50s[0], 1e-9),
                                    "×", backend=backend))
    return rows
