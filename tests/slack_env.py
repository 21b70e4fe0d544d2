"""The real Bolt app of the Slack adapter, served on 127.0.0.1, talking to the fake Slack Web API.

The `slack_env` fixture wires the bot from the `app` fixture (the same bootstrap as the console story) with Slack
settings, serves its `AsyncApp` with Bolt's own aiohttp server, and hands tests a `SlackSender` that
signs requests like Slack. `settle()` waits until every acknowledged request has been handled, so a
test can assert what a user would see, and also what must *not* have happened (a retried event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bot.adapters.slack import SlackAdapter
from bot.bootstrap import App
from store.accounts import resolve_account
from store.gpts import GptFields, create_gpt
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_fake import BoltHTTPServer, FakeSlackAPI, SlackResult, SlackSender

SECRET = "e3b0c44298fc1c149afbf4c8996fb924"
ALICE, BOB, CAROL = "UALICE01", "UBOB0001", "UCAROL01"
GENERAL = "CGENERAL1"


@dataclass
class SlackEnv:
    app: App
    fake: FakeSlackAPI
    slack: SlackSender
    adapter: SlackAdapter
    llm: FakeOpenAI

    async def settle(self) -> None:
        await self.adapter.idle()

    async def command(self, text: str, *, user: str = BOB, channel: str = GENERAL, command: str = "/gpt",
                      **extra: Any) -> SlackResult:
        result = await self.slack.slash_command(command=command, text=text, user_id=user, channel_id=channel, **extra)
        assert result.status == 200, result.text
        await self.settle()
        return result

    async def event(self, event: dict[str, Any], **extra: Any) -> SlackResult:
        result = await self.slack.event(event, **extra)
        assert result.status == 200, result.text
        await self.settle()
        return result

    async def dm(self, user: str, text: str) -> SlackResult:
        return await self.event(self.slack.message_im(user_id=user, text=text))

    async def press(self, message: dict[str, Any], label: str, *, user: str, value: str | None = None) -> SlackResult:
        """Press the button (or choose `value` in the select) whose label is `label` on a message."""
        element = find_element(message["blocks"] or [], label)
        channel = message["channel"]
        if element["type"] == "button":
            result = await self.slack.block_action(action_id=element["action_id"], value=element["value"], user_id=user,
                                                   channel_id=channel, message_ts=message["ts"])
        else:
            option = next(o for o in element["options"] if value in (o["value"], o["text"]["text"]))
            result = await self.slack.block_action(
                action_id=element["action_id"], value=option["value"], user_id=user, channel_id=channel,
                message_ts=message["ts"], action_type=element["type"],
                action={"action_id": element["action_id"], "type": element["type"], "block_id": "b1",
                        "selected_option": option},
            )
        assert result.status == 200, result.text
        await self.settle()
        return result

    def texts(self, channel: str, thread_ts: str | None = None) -> list[str]:
        return [unescape(m["text"]) for m in self.fake.messages(channel, thread_ts)]

    def last(self, channel: str) -> dict[str, Any]:
        return self.fake.messages(channel)[-1]

    def whispers(self, user: str, channel: str | None = None) -> list[str]:
        """Ephemeral messages only `user` saw (text of each)."""
        return [unescape(e["text"] or "") for e in self.fake.ephemerals(channel, user)]

    async def publish(self, name: str, *, creator: str = ALICE, creator_name: str = "Alice",
                      starters: tuple[str, ...] = ("What can you do?",), category: str = "Education") -> str:
        """A published public GPT made by a Slack user (as if built in the DM builder); its slug."""
        async with self.app.db.session() as session:
            account = await resolve_account(session, platform="slack", user_id=creator, display_name=creator_name,
                                            locale="en")
            gpt, _ = await create_gpt(session, creator_id=account.id or 0, fields=GptFields(
                name=name, description=f"{name} helps with homework.", instructions=f"You are {name}.",
                starters=starters, category=category, model="gpt-4o-mini", visibility="public",
            ))
        return gpt.slug

    async def rows(self, model: Any) -> list[Any]:
        async with self.app.db.reader() as session:
            return list((await session.execute(select(model))).scalars())


def unescape(text: str) -> str:
    """Slack's wire text as a person reads it (`&lt;gpt&gt;` shows as `<gpt>`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def find_element(blocks: list[dict[str, Any]], label: str) -> dict[str, Any]:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            shown = (element.get("text") or element.get("placeholder") or {}).get("text", "")
            if shown.casefold() == label.casefold():
                return element
    raise AssertionError(f"no control labelled {label!r} in {blocks}")


def rendered(message: dict[str, Any]) -> str:
    """Everything a person reads in a message: its text and the text of its blocks."""
    parts = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return unescape("\n".join(parts))


def slack_settings(app: App, **extra: Any) -> Any:
    values: dict[str, Any] = {"slack_signing_secret": SecretStr(SECRET)}
    values.update(extra)
    return app.settings.model_copy(update=values)


@asynccontextmanager
async def open_slack_env(app: App, fake_llm: FakeOpenAI) -> AsyncIterator[SlackEnv]:
    """The `slack_env` fixture (declared in conftest.py): three people, #general, a bot token."""
    async with FakeSlackAPI() as fake:
        for user, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")):
            fake.add_user(user, name.lower(), real_name=name, display_name=name)
        fake.add_channel(GENERAL, "general")
        settings = slack_settings(app, slack_bot_token=SecretStr("xoxb-test"))
        adapter = SlackAdapter(app, client=AsyncWebClient(base_url=fake.base_url), settings=settings,
                               edit_interval=0.05)
        try:
            async with BoltHTTPServer(adapter.bolt) as server, SlackSender(server.url, SECRET, fake=fake) as slack:
                yield SlackEnv(app, fake, slack, adapter, fake_llm)
                await adapter.idle()
        finally:
            await adapter.aclose()
