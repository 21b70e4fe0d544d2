"""Logs of a full run: the event id on every line written while handling an event, and never a
configured token, key or secret."""

from __future__ import annotations

import io
import logging
import re

from bot.bootstrap import bootstrap
from bot.logs import NOISY, configure
from tests.conftest import Terminal, make_settings
from tests.fakes.openai_server import FakeOpenAI

SECRETS = {
    "llm_api_key": "sk-live-9f8e7d6c5b4a39281706",
    "discord_token": "MTAxNTk.discord.secret-token-value",
    "slack_bot_token": "xoxb-1111-2222-secretslack",
    "slack_signing_secret": "signing-secret-abcdef123456",
    "slack_client_secret": "client-secret-0987654321",
}


async def test_a_full_run_logs_no_secret_and_tags_event_ids(database_url: str, fake_llm: FakeOpenAI) -> None:
    settings = make_settings(database_url, fake_llm.base_url, **SECRETS)
    stream = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in (*NOISY, "")}
    handler = configure("DEBUG", settings.secret_values(), stream=stream)
    try:
        app = await bootstrap(settings, migrate=True)
        t = Terminal(app)
        await t.run(":as alice", ":dm", "/gpt create", "A helper that echoes the key " + SECRETS["llm_api_key"])
        await t.run("publish")
        fake_llm.fail_next(401, message="Incorrect API key provided: " + SECRETS["llm_api_key"])
        await t.run(":as bob", ":in #general", "/gpt ask a-helper-that hello")
        fake_llm.fail_next(500, times=2)
        await t.run("/gpt ask a-helper-that again")
        logging.getLogger("test").error("leak attempt %s", SECRETS["discord_token"])
        await app.aclose()
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = stream.getvalue()
    assert text.strip(), "the run logged nothing"
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} reached the logs"
    warnings = [line for line in text.splitlines() if "llm error for invocation" in line]
    assert len(warnings) == 2
    assert all(re.search(r"event=[0-9a-f]{12}-\d+", line) for line in warnings)
