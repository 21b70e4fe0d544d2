"""Block Kit rendering of neutral replies: Markdown to mrkdwn, and Slack's size limits respected."""

from __future__ import annotations

import json
import socket

import aiohttp
from pydantic import SecretStr

from bot.adapters import slack_blocks as kit
from bot.adapters.slack import plain, start
from bot.bootstrap import App
from bot.catalog import COMMANDS
from bot.replies import Button, Card, CardField, Form, FormField, Option, Reply, Select, Style
from tests.slack_env import slack_settings


def test_markdown_becomes_mrkdwn() -> None:
    assert kit.mrkdwn("**Math Tutor** · by Alice") == "*Math Tutor* · by Alice"
    assert kit.mrkdwn("an *italic* word and __bold__") == "an _italic_ word and *bold*"
    assert kit.mrkdwn("# Title\n- one\n* two") == "*Title*\n• one\n• two"
    assert kit.mrkdwn("see [the docs](https://example.com/a?b=1&c=2)") == "see <https://example.com/a?b=1&amp;c=2|the docs>"
    assert kit.mrkdwn("x < y & `a**b**<c>` ~~old~~") == "x &lt; y &amp; `a**b**&lt;c&gt;` ~old~"
    assert kit.mrkdwn("```\n**not bold**\n```") == "```\n**not bold**\n```"


def test_wire_text_becomes_what_was_typed() -> None:
    assert plain("<@U0BOT> math-tutor: is 1 &lt; 2 &amp; <https://x.org|x.org>?", "U0BOT") == "math-tutor: is 1 < 2 & x.org?"
    assert plain("<https://a.io/p>") == "https://a.io/p"
    assert plain("ask <@U0BOB|bob> in <#C0GEN|general>") == "ask @bob in <#C0GEN|general>"  # admins need channel ids


def test_long_content_is_cut_to_slack_limits() -> None:
    description = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # ~10 000 characters
    card = Card("T" * 200, description, tuple(CardField(f"f{n}", "v") for n in range(12)), footer="foot")
    actions = (*(Button("B" * 100, f"b:{n}", Style.PRIMARY) for n in range(30)),
               Select("pick", "P" * 200, tuple(Option("o" * 100, "v" * 200, "d" * 100) for _ in range(120))))
    blocks = kit.message_blocks(Reply(text="hello", card=card, actions=actions))
    assert len(blocks) <= kit.MESSAGE_BLOCKS
    sections = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert sections and all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert all(len(b.get("fields", [])) <= 10 for b in blocks)
    header = next(b for b in blocks if b["type"] == "header")
    assert len(header["text"]["text"]) <= 150
    controls = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(controls) == 31 and all(len(b["elements"]) <= 25 for b in blocks if b["type"] == "actions")
    assert all(len(e["text"]["text"]) <= 75 for e in controls if e["type"] == "button")
    menu = controls[-1]
    assert len(menu["options"]) == 100 and all(len(o["value"]) <= 150 and len(o["text"]["text"]) <= 75 for o in menu["options"])

    many = Reply(cards=tuple(Card(f"c{n}", "d") for n in range(40)), actions=(Button("Go", "go"),))
    cut = kit.message_blocks(many)
    assert len(cut) == kit.MESSAGE_BLOCKS and cut[-1]["type"] == "actions"  # the buttons survive the cut


def test_thread_buttons_are_not_rendered_on_slack() -> None:
    reply = Reply(actions=(Button("Continue in thread", "thread:7"), Button("Regenerate", "regen:7")))
    (block,) = kit.action_blocks(reply.actions)
    assert [e["action_id"] for e in block["elements"]] == ["regen:7"]


def test_forms_become_modals_and_come_back_as_values() -> None:
    form = Form("search-submit", "Search the GPT store for everything", (
        FormField("query", "Words", max_length=200, value="cats"), FormField("note", "Note", long=True, required=False)))
    view = kit.modal_view(form, metadata={"c": "C1"}, submit="Submit", close="Cancel")
    assert view["type"] == "modal" and len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {"c": "C1"}
    query, note = view["blocks"]
    assert query["element"]["initial_value"] == "cats" and note["optional"] and note["element"]["multiline"]
    state = {"query": {"value": {"type": "plain_text_input", "value": "dogs"}},
             "gpt": {"value": {"type": "external_select", "selected_option": {"value": "math-tutor"}}},
             "note": {"value": {"type": "plain_text_input", "value": None}}}
    assert kit.form_values(state) == {"query": "dogs", "gpt": "math-tutor", "note": ""}


def test_command_modal_from_the_catalogue() -> None:
    from bot.commands import load

    load()
    view = kit.command_modal(COMMANDS[("gpt", "ask")], tr=str, prefill={"gpt": "math-tutor"}, metadata={},
                             categories=["Writing"], submit="Submit", close="Cancel")
    gpt, prompt = view["blocks"]
    assert gpt["element"]["initial_option"]["value"] == "math-tutor"
    assert prompt["element"]["type"] == "plain_text_input" and prompt["element"]["max_length"] == 3000
    browse = kit.command_modal(COMMANDS[("gpt", "browse")], tr=str, prefill={}, metadata={}, categories=["Writing"],
                               submit="Submit", close="Cancel")
    assert browse["blocks"][0]["element"]["type"] == "static_select" and browse["blocks"][0]["optional"]


def test_suggested_prompts_from_a_select() -> None:
    select = Select("assistant:pick", "Choose", tuple(Option(f"G{n}", f"g{n}: hi") for n in range(6)))
    assert kit.suggested_prompts((Button("x", "y"), select)) == [{"title": f"G{n}", "message": f"g{n}: hi"} for n in range(4)]


async def test_start_serves_http_mode_and_refuses_unsigned_requests(app: App) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.settings = slack_settings(app, slack_bot_token=SecretStr("xoxb-unused"), slack_port=port)
    close = await start(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data="command=/gpt",
                                 headers={"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": "1"}) as refused:
                assert refused.status == 401
    finally:
        await close()


def test_the_readme_manifest_matches_what_the_adapter_uses() -> None:
    """The manifest users paste must grant what the code asks for (one paste, no missing scope)."""
    import re
    from pathlib import Path

    import pytest

    from bot.adapters.slack import BOT_SCOPES, EVENTS_PATH

    yaml = pytest.importorskip("yaml")
    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text().split("## Run it on Slack", 1)[1]
    manifest = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S)[1])  # type: ignore[index]
    assert manifest["oauth_config"]["scopes"]["bot"] == sorted(BOT_SCOPES)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/gpt", "/gpt-admin"]
    assert {"app_home_opened", "app_mention", "message.im", "message.channels", "assistant_thread_started"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    urls = [manifest["settings"]["event_subscriptions"]["request_url"], manifest["settings"]["interactivity"]["request_url"],
            *(c["url"] for c in manifest["features"]["slash_commands"])]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    assert manifest["features"]["app_home"]["home_tab_enabled"] and "assistant_view" in manifest["features"]
