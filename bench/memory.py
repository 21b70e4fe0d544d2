"""Memory: the bot process's RSS after it has opened many conversations.

The bot runs in a child process of its own (so the harness and the fake LLM are not counted).
It starts N conversations (`/gpt ask` in N threads, 200 at a time) and continues one in ten of
them with a message in its thread; RSS is read from /proc after N/10 and after N conversations,
and the peak (VmHWM) at the end. All conversation state lives in the database, so RSS should
not grow with N. Target: ≤ 250 MB with 10 000 open conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from bench import report
from bench.fakellm import FakeLLMProcess
from bench.harness import (
    PLATFORM,
    WORKSPACE,
    BenchOutbox,
    Tally,
    ask,
    bench_settings,
    running_bot,
)
from bench.report import Row
from bench.seed import seeded_store
from bot.events import Actor, Message, Place

NAME = "memory"
WAVE = 200


def _status(field: str) -> float:
    """A VmRSS / VmHWM line of /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def child(database_url: str, llm_url: str, conversations: int, users: int, slugs: list[str]) -> dict[str, object]:
    async with running_bot(bench_settings(database_url, llm_url)) as app:
        tally = Tally()
        early = 0.0
        for start in range(0, conversations, WAVE):
            events = []
            for i in range(start, min(start + WAVE, conversations)):
                event = ask(i % users, slugs[i % len(slugs)])
                events.append(type(event)(event.actor, Place(WORKSPACE, f"c{i % 50}", thread_id=f"t{i}",
                                                                   workspace_name="Bench"),
                                          event.event_id, "gpt", "ask", event.options))
            await asyncio.gather(*(app.core.handle(e, BenchOutbox(tally, time.perf_counter())) for e in events))
            if start + WAVE >= conversations // 10 and not early:
                early = _status("VmRSS")
        follow = [Message(Actor(PLATFORM, f"user{i % users}", f"User {i % users}"),
                          Place(WORKSPACE, f"c{i % 50}", thread_id=f"t{i}", workspace_name="Bench"),
                          f"follow-{i}-{time.monotonic_ns()}", "And then?") for i in range(0, conversations, 10)]
        for start in range(0, len(follow), WAVE):
            await asyncio.gather(*(app.core.handle(e, BenchOutbox(tally, time.perf_counter()))
                                   for e in follow[start:start + WAVE]))
        return {"early": early, "rss": _status("VmRSS"), "peak": _status("VmHWM"),
                "answers": len(tally.answers), "other": len(tally.texts),
                "sample": (tally.texts or [""])[0][:80]}


async def run(quick: bool, backends: list[str]) -> list[Row]:
    conversations = 50 if quick else 10_000
    rows: list[Row] = []
    async with FakeLLMProcess(latency=0.0, tokens=20) as llm:
        for backend in backends:
            async with seeded_store(backend, gpts=1_000) as (store, catalogue):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.memory", "--database", store.url, "--llm", llm.base_url,
                    "--conversations", str(conversations), "--users", str(catalogue.users),
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"the memory child failed ({proc.returncode})")
                got = json.loads(out.decode().strip().splitlines()[-1])
            tenth = f"{conversations // 10:,}".replace(",", " ")
            full = f"{conversations:,}".replace(",", " ")
            rows += [
                report.info(NAME, f"RSS after {tenth} conversations", got["early"], "MB", backend=backend),
                report.at_most(NAME, f"RSS after {full} conversations", got["rss"], "MB", 250, backend=backend),
                report.at_most(NAME, f"peak RSS, {full} conversations", got["peak"], "MB", 250, backend=backend),
                report.info(NAME, "RSS growth, conversations ×10", got["rss"] / max(got["early"], 1), "×",
                            backend=backend),
                report.exactly(NAME, "answers streamed", got["answers"], "answers",
                               conversations + len(range(0, conversations, 10)), backend=backend,
                               note=got["sample"] if got["other"] else ""),
            ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--llm", required=True)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args()
    slugs = asyncio.run(_slugs(args.database))
    print(json.dumps(asyncio.run(child(args.database, args.llm, args.conversations, args.users, slugs))))


async def _slugs(database_url: str) -> list[str]:
    from sqlmodel import col, select

    from store.db import Database, make_engine
    from store.models import Gpt

    db = Database(make_engine(database_url))
    try:
        async with db.reader() as session:
            return list((await session.execute(select(Gpt.slug).order_by(col(Gpt.id)))).scalars())
    finally:
        await db.dispose()


if __name__ == "__main__":
    main()
