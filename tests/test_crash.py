"""The bot process killed with SIGKILL in the middle of an answer and of the DM builder: after a
restart the interrupted use is failed (it never earns) and the draft is intact."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlmodel import select

from billing.tracking import fail_interrupted
from bot.bootstrap import bootstrap
from store.models import BuilderDraft, Invocation
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]


async def start_console(script: Path, database_url: str, llm_url: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPTSTORE_")}
    env.update(GPTSTORE_DATABASE_URL=database_url, GPTSTORE_LLM_BASE_URL=llm_url,
               GPTSTORE_LLM_MODELS="gpt-4o-mini", GPTSTORE_LOG_LEVEL="WARNING")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "console", "--script", str(script), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_for(predicate, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def test_killed_mid_answer(database_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = make_settings(database_url, fake_llm.base_url)
    app = await bootstrap(settings, migrate=True)
    await Terminal(app).run(":as alice", ":dm", "/gpt create", "fields", "Slow Poet", "Writes slowly.", "You write.",
                            "skip", "1", "1", "public", "publish")
    await app.aclose()

    fake_llm.token_rate = 5  # slow enough to be killed halfway
    script = tmp_path / "ask.txt"
    script.write_text(":as bob\n:in #general\n/gpt ask slow-poet " + " ".join(["word"] * 40) + "\n")
    process = await start_console(script, database_url, fake_llm.base_url)
    await wait_for(lambda: len(fake_llm.requests) >= 1)
    await asyncio.sleep(0.5)
    await kill(process)

    app = await bootstrap(settings, migrate=True)
    try:
        async with app.db.session() as session:
            if not settings.is_sqlite:
                # On a shared PostgreSQL another replica might still be answering: the sweeper
                # fails orphans only once they are older than the longest possible answer.
                assert [i.status for i in (await session.execute(select(Invocation))).scalars()] == ["pending"]
                await fail_interrupted(session)
        async with app.db.reader() as session:
            rows = list((await session.execute(select(Invocation))).scalars())
        assert [(i.status, i.error_code) for i in rows] == [("error", "interrupted")]
        fake_llm.token_rate = None
        out = await Terminal(app).run(":as bob", ":in #general", "/gpt ask slow-poet hi")
        assert "Answer 1: hi" in out  # the restarted bot answers normally
    finally:
        await app.aclose()


async def test_killed_mid_builder(database_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = make_settings(database_url, fake_llm.base_url)
    script = tmp_path / "build.txt"
    script.write_text(":as carol\n:dm\n/gpt create\nfields\nHaiku Cat\nCat haiku.\nA bot that writes cat haiku\n")
    fake_llm.latency = 30  # the drafting call never returns before the kill
    process = await start_console(script, database_url, fake_llm.base_url)
    # the script ends by itself; run it to completion first, then kill one mid-drafting
    await process.wait()
    script2 = tmp_path / "build2.txt"
    script2.write_text(":as dora\n:dm\n/gpt create\nA bot that writes dog haiku\n")
    process = await start_console(script2, database_url, fake_llm.base_url)
    await wait_for(lambda: any("dog haiku" in str(r) for r in fake_llm.requests))
    await kill(process)
    fake_llm.latency = 0

    app = await bootstrap(settings, migrate=True)
    try:
        async with app.db.reader() as session:
            drafts = {d.state: d.data for d in (await session.execute(select(BuilderDraft))).scalars()}
        assert drafts["starters"]["name"] == "Haiku Cat"  # carol's draft, saved step by step
        assert drafts["describe"] == {}  # dora's draft waits where it was; nothing half-written
        out = await Terminal(app).run(":as carol", ":dm", "skip", "6", "1", "public", "publish")
        assert "Published **Haiku Cat**" in out
    finally:
        await app.aclose()
