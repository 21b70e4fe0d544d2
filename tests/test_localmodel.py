"""The offline default: with no endpoint, the `local` extra's model answers through the gateway;
its server process never outlives the bot; without the extra the bot says what to configure.

The tests that need the model start the real `llama_cpp.server` through the bot's own code and
are skipped only when `llama_cpp` is not installed (`.ci/run` installs the `local` extra).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot import localmodel
from bot.bootstrap import bootstrap
from bot.llm import Usage
from config import load_settings
from tests.conftest import Terminal, make_settings

EXIT_WAIT = 30.0
"""How long a dying process may take to disappear: a bound for a hung test, not a speed check."""


def _state(pid: int) -> str | None:
    """The process state letter from /proc, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")  # a zombie has exited; only its parent's reaping is left


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + EXIT_WAIT
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _local_settings(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gptstore.db'}", llm_base_url=None, llm_api_key=None,
        llm_local=True, **extra,
    )


# -- with the extra: the real server, through bootstrap and the gateway ---------------------------


async def test_local_model_streams_an_answer_and_is_restarted_and_stopped(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    app = await bootstrap(_local_settings(tmp_path))
    server = app.services.extras["local_model"]
    try:
        assert isinstance(server, localmodel.LocalServer)
        assert app.services.extras["llm_notice"] == localmodel.LOCAL_NOTICE
        # the served model is the default, not the settings' OpenAI default
        assert server.model_id and app.services.llm.default_model == server.model_id != "gpt-4o-mini"
        assert server.log_path == tmp_path / "gptstore-llm.log" and server.log_path.exists()

        async def ask() -> tuple[str, Usage]:
            deltas: list[str] = []
            usage = Usage(0, 0)
            async for item in app.services.llm.stream(model=None, max_tokens=8, messages=[
                {"role": "system", "content": "You are a friendly assistant. Answer in one short sentence."},
                {"role": "user", "content": "Say hello to Alice."},
            ]):
                if isinstance(item, Usage):
                    usage = item
                else:
                    deltas.append(item)
            return "".join(deltas), usage

        text, usage = await ask()
        # llama_cpp.server sends no usage chunk in streams: the gateway counts the deltas instead
        assert text.strip() and 1 <= usage.completion_tokens <= 8

        first = server.pid
        assert first is not None and _alive(first)
        os.kill(first, signal.SIGKILL)  # the server crashes: it comes back on the same port
        deadline = time.monotonic() + 120
        while (server.restarts < 1 or server.pid is None) and time.monotonic() < deadline:
            await _sleep(0.2)
        assert server.restarts == 1 and server.pid not in (None, first)
        text, _ = await ask()
        assert text.strip()
        second = server.pid
    finally:
        await app.aclose()
    assert second is not None and not _alive(second)
    assert server.pid is None


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.parametrize("ending", ["quit", "sigterm", "sigkill"])
def test_local_model_never_outlives_the_bot(tmp_path: Path, ending: str) -> None:
    """`gptstore console` in its own process: its model server dies with it, however it ends."""
    pytest.importorskip("llama_cpp")
    env = dict(os.environ, GPTSTORE_LLM_LOCAL="true", GPTSTORE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
               COLUMNS="500", PYTHONUNBUFFERED="1")
    bot = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", "console"], cwd=tmp_path, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in bot.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while not any("small demo model" in line for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert bot.poll() is None, "".join(seen)
        assert any("gptstore console" in line for line in seen), "".join(seen)
        children = _children(bot.pid)
        assert len(children) == 1, (children, "".join(seen))
        child = children[0]
        assert "bot.localserver" in Path(f"/proc/{child}/cmdline").read_text()

        if ending == "quit":
            assert bot.stdin is not None
            bot.stdin.write(":quit\n")
            bot.stdin.flush()
            assert bot.wait(timeout=60) == 0
            assert not _alive(child)  # stopped before the bot exited
        else:
            bot.send_signal(signal.SIGTERM if ending == "sigterm" else signal.SIGKILL)
            bot.wait(timeout=60)
            assert _wait_gone(child), f"the model server {child} outlived the bot ({ending})"
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()


# -- without an endpoint or the extra: the bot starts and says what to configure ----------------


def test_without_the_extra_no_model_is_found() -> None:
    assert localmodel.find_model(runtime="no_such_runtime") is None
    assert localmodel.find_model(package="no_such_model_package") is None


async def test_nothing_configured_says_what_to_configure(database_url: str) -> None:
    app = await bootstrap(make_settings(database_url, None, llm_local=False), migrate=True)
    try:
        assert "local_model" not in app.services.extras
        assert not app.services.llm.configured
        t = Terminal(app)
        out = await t.run("/gpt help")
        assert "No language model is configured, so GPTs cannot answer yet" in out
        assert "GPTSTORE_LLM_BASE_URL" in out and "`local` extra" in out

        out = await t.run(":as carol", ":dm", "/gpt create", "A bot that writes haiku about cats")
        assert "What is its name?" in out  # field by field
        await t.run("Cat Haiku", "Writes a haiku about your cat.", "You write one haiku about the cat described.")
        out = await t.run("skip", "6", app.settings.llm_default_model, "public", "publish")
        assert "Published **Cat Haiku**" in out
        out = await t.run(":in #general", "/gpt ask cat-haiku a fat orange cat")
        assert "No language model is configured yet" in out and "install the `local` extra" in out
    finally:
        await app.aclose()


def test_context_fits_the_conversation_budget(tmp_path: Path) -> None:
    # with the defaults the longest conversation exceeds the model's window: use all of it
    assert localmodel.context_size(_local_settings(tmp_path)) == localmodel.MODEL_MAX_CTX
    small = _local_settings(tmp_path, history_turns=0, max_prompt_chars=400)
    size = localmodel.context_size(small)
    assert localmodel.MIN_CTX <= size < localmodel.MODEL_MAX_CTX and size % 512 == 0
    assert size * localmodel.CHARS_PER_TOKEN >= 8000 + 400  # instructions and prompt at their limits
