"""LLM faults seen by a member: a clear message, the part already streamed kept, the use
recorded as an error that earns nothing, and the next request answered normally."""

from __future__ import annotations

import socket

import pytest
from sqlmodel import select

from bot.bootstrap import App, bootstrap
from store.models import Gpt, Invocation
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI


async def publish_helper(t: Terminal) -> None:
    await t.run(":as alice", ":dm", "/gpt create", "fields", "Helper Bot", "Helps.", "You help people.",
                "skip", "1", "1", "public", "publish")
    await t.run(":as bob", ":in #general")


async def statuses(app: App) -> list[tuple[str, str | None]]:
    async with app.db.reader() as session:
        rows = await session.execute(select(Invocation).order_by(Invocation.id))  # type: ignore[arg-type]
        return [(i.status, i.error_code) for i in rows.scalars()]


async def uses(app: App) -> int:
    async with app.db.reader() as session:
        return (await session.execute(select(Gpt.uses))).scalar_one()


async def test_rate_limit_with_retry_after_is_waited_out(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    await publish_helper(terminal)
    fake_llm.fail_next(429, retry_after=0.2)
    out = await terminal.run("/gpt ask helper-bot hello")
    assert "Answer 1: hello" in out and "⚠️" not in out
    assert await statuses(app) == [("ok", None)]


@pytest.mark.parametrize("status, message", [
    (503, "The model provider did not answer"),
    (500, "The model provider did not answer"),
    (429, "The model provider is busy right now"),
])
async def test_server_errors_become_clear_messages(
    app: App, terminal: Terminal, fake_llm: FakeOpenAI, status: int, message: str
) -> None:
    await publish_helper(terminal)
    fake_llm.fail_next(status, times=2)  # the gateway retries once in tests
    out = await terminal.run("/gpt ask helper-bot hello")
    assert message in out and "Traceback" not in out and str(status) not in out
    out = await terminal.run("/gpt ask helper-bot again")
    assert "Answer 1: again" in out
    assert [s for s, _ in await statuses(app)] == ["error", "ok"]
    assert await uses(app) == 1


@pytest.mark.parametrize("fault", ["stall", "malformed", "drop"])
async def test_broken_stream_keeps_the_streamed_part(
    app: App, terminal: Terminal, fake_llm: FakeOpenAI, fault: str
) -> None:
    await publish_helper(terminal)
    {"stall": fake_llm.stall_next, "malformed": fake_llm.malformed_next, "drop": fake_llm.drop_next}[fault](3)
    out = await terminal.run("/gpt ask helper-bot one two three four five six")
    assert "Answer 1: one" in out  # the first tokens stay visible
    assert "The answer was cut off by the model provider" in out
    assert "six" not in out.split("Answer 1:")[1].split("⚠️")[0]
    status = await statuses(app)
    assert status[0][0] == "error" and status[0][1] in ("stalled", "broken_stream")
    out = await terminal.run("/gpt ask helper-bot fine now")
    assert "Answer 1: fine now" in out
    assert await uses(app) == 1


async def test_connection_refused(database_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    app = await bootstrap(make_settings(database_url, f"http://127.0.0.1:{port}/v1"), migrate=True)
    try:
        t = Terminal(app)
        await publish_helper(t)
        out = await t.run("/gpt ask helper-bot hello")
        assert "The model provider did not answer" in out
        assert await statuses(app) == [("error", "unavailable")]
    finally:
        await app.aclose()


async def test_shutdown_cuts_a_long_answer_with_a_message(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    import asyncio

    await publish_helper(terminal)
    fake_llm.token_rate = 20  # a slow answer: about 3 s for its 60 tokens
    task = asyncio.create_task(terminal.run("/gpt ask helper-bot " + " ".join(f"w{i}" for i in range(60))))
    await asyncio.sleep(0.3)
    # cut at about 1.3 s, then a second to write the message and record the use before anything
    # is cancelled (0.2 s was too short for a slow machine's PostgreSQL)
    await app.core.shutdown(grace=2.0)
    out = await task
    assert "this answer was cut short" in out
    assert (await statuses(app))[0] == ("error", "shutdown")
    out = await terminal.run("/gpt ask helper-bot after")
    assert "The bot is restarting" in out
