"""Slack in Socket Mode (an app-level token set): `gptstore run`'s own start-up of the adapter,
slack_sdk's Socket Mode client over a real WebSocket to the fake, Bolt, the core, the Web API.

A member asks in a channel and gets the streamed answer; Slack's periodic reconnection request
does not lose the next command; an envelope Slack sends again (its ack was late) is acknowledged
and not answered twice."""

from __future__ import annotations

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import start
from bot.bootstrap import App
from store.accounts import resolve_account
from store.gpts import GptFields, create_gpt
from store.models import Invocation
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_fake import FakeSlackAPI
from tests.fakes.slack_socket import FakeSocketMode
from tests.policy_helpers import rows
from tests.slack_env import BOB, GENERAL, slack_settings, unescape


async def publish(app: App, name: str) -> str:
    async with app.db.session() as session:
        account = await resolve_account(session, platform="slack", user_id="UALICE01", display_name="Alice", locale="en")
        gpt, _ = await create_gpt(session, creator_id=account.id or 0, fields=GptFields(
            name=name, description=f"{name} helps with homework.", instructions=f"You are {name}.",
            starters=(), category="Education", model="gpt-4o-mini", visibility="public"))
    return gpt.slug


def answers(fake: FakeSlackAPI) -> list[str]:
    """Every message in #general and its threads that holds an answer."""
    found: dict[str, str] = {}
    for top in fake.messages(GENERAL):
        for message in [top, *fake.messages(GENERAL, top["ts"])]:
            if "Answer" in (message.get("text") or ""):
                found[message["ts"]] = unescape(message["text"])
    return list(found.values())


async def answered(fake: FakeSlackAPI, question: str) -> None:
    """Wait until an answer to `question` is in #general, streamed or posted whole."""
    await fake.wait_until(lambda: any(question in text for text in answers(fake)), timeout=10,
                          what=f"an answer to {question!r}")


async def test_socket_mode_answers_reconnects_and_ignores_a_redelivery(app: App, fake_llm: FakeOpenAI) -> None:
    fake_llm.token_rate = None
    slug = await publish(app, "Tutor")
    async with FakeSlackAPI() as fake, FakeSocketMode(fake) as socket:
        fake.add_user(BOB, "bob", real_name="Bob", display_name="Bob")
        fake.add_channel(GENERAL, "general")
        settings = slack_settings(app, slack_bot_token=SecretStr("xoxb-test"),
                                  slack_app_token=SecretStr("xapp-1-A0001-test"))
        close = await start(app, client=AsyncWebClient(base_url=fake.base_url), settings=settings)
        try:
            await socket.connected()
            first = socket.slash_command(f"ask {slug} What is a derivative?", user_id=BOB, channel_id=GENERAL)
            ack = await socket.send("slash_commands", first)
            assert ack["envelope_id"]  # acknowledged over the socket, within Slack's 3 s
            await answered(fake, "Answer 1: What is a derivative?")  # in the thread under the root message

            await socket.refresh()  # Slack asks for a new connection; the client opens one
            await socket.connected()
            second = socket.slash_command(f"ask {slug} And an integral?", user_id=BOB, channel_id=GENERAL)
            await socket.send("slash_commands", second)
            await answered(fake, "Answer 1: And an integral?")
            assert socket.connections >= 2  # it connected again (slack_sdk may also reopen once on the close)

            await socket.send("slash_commands", second, retry_attempt=1)  # the same command again
            await close()  # lets what is in flight finish
            close = None
        finally:
            if close is not None:
                await close()
        assert sorted(i.status for i in await rows(app, Invocation)) == ["ok", "ok"]
        assert len([t for t in answers(fake) if "And an integral?" in t]) == 1
