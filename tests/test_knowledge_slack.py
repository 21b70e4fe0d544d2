"""Knowledge files through Slack: the real Bolt app over signed HTTP, the fake Slack Web API hosting the
files behind the bot token, as Slack does.

First what the adapter hands the core when a creator shares files in the bot's DM (name, size, type,
and a download that happens only when the core asks, with that workspace's token, and never
returns a sign-in page as if it were the file); then the creator's story through the core."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import SlackAdapter
from bot.adapters.slack_files import DownloadFailed, download
from bot.bootstrap import App
from bot.events import Event, Message
from tests.fakes.slack_fake import BoltHTTPServer, FakeSlackAPI, SlackSender
from tests.knowledge_files import Heading, docx_bytes
from tests.slack_env import ALICE, GENERAL, SECRET, SlackEnv, rendered, slack_settings
from tests.test_knowledge_discord import PAGES, record_events, stored_files

NOTES = (
    b"# Course notes\n\n## Photosynthesis\n\nChlorophyll absorbs red and blue light; the Calvin cycle\n"
    b"fixes carbon dioxide into glucose in the stroma.\n"
)


def only_message(seen: list[Event]) -> Message:
    (event,) = seen
    assert isinstance(event, Message)
    return event


async def test_a_file_shared_in_the_dm_reaches_the_core_and_is_read_only_when_asked(
    slack_env: SlackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = slack_env
    seen = record_events(env.app, monkeypatch)
    await env.event(env.slack.file_share(user_id=ALICE, files={"Course notes.md": NOTES}))

    message = only_message(seen)
    assert message.place.is_dm and message.text == "" and message.actor.user_id == ALICE
    (file,) = message.files
    assert (file.name, file.size, file.content_type) == ("Course notes.md", len(NOTES), "text/plain")
    assert env.fake.file_downloads == []  # nothing downloaded until the core asks

    assert file.fetch is not None
    assert await file.fetch(10 * 1024 * 1024) == NOTES
    (fid, token, status) = env.fake.file_downloads[-1]
    assert (token, status) == ("xoxb-test", 200)  # the workspace's bot token, in the header

    cut = await file.fetch(10)  # a file longer than the limit: the limit's worth, never the whole file
    assert cut == NOTES[:10]


async def test_without_the_workspace_token_slack_sends_a_sign_in_page_and_no_file(
    slack_env: SlackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = slack_env
    seen = record_events(env.app, monkeypatch)
    await env.event(env.slack.file_share(user_id=ALICE, files={"notes.md": NOTES}))
    (file,) = only_message(seen).files
    (url,) = [f["url_private_download"] for f in env.fake.files.values()]

    async with aiohttp.ClientSession() as http, http.get(url) as page:  # what a browser without a session gets
        assert page.status == 200 and page.content_type == "text/html" and page.history
        assert "Sign in" in await page.text()

    with pytest.raises(DownloadFailed):  # no token: refused before asking
        await download(url, "", 1024)
    env.fake.invalid_tokens.add("xoxb-not-a-real-token")
    with pytest.raises(DownloadFailed):
        await download(url, "xoxb-not-a-real-token", 1024)
    env.fake.invalid_tokens.add("xoxb-test")  # the bot's own token revoked: its download fails too
    assert file.fetch is not None
    with pytest.raises(DownloadFailed):
        await file.fetch(1024)
    assert [status for _, _, status in env.fake.file_downloads] == [302, 302, 302]


async def test_a_file_slack_only_describes_by_id_is_looked_up_and_html_files_still_download(
    slack_env: SlackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = slack_env
    seen = record_events(env.app, monkeypatch)
    page = b"<!DOCTYPE html><html><body><h1>Glossary</h1><p>Osmosis: water through a membrane.</p></body></html>"
    await env.event(env.slack.file_share(user_id=ALICE, files={"glossary.html": page}, trimmed=True))
    (file,) = only_message(seen).files
    assert len(env.fake.calls_to("files.info")) == 1  # the stub was completed (metadata only)
    assert (file.name, file.size, file.content_type) == ("glossary.html", len(page), "text/html")
    assert file.fetch is not None
    assert await file.fetch(1 << 20) == page  # an HTML file is a file, not a sign-in page


async def test_which_messages_with_files_reach_the_core(slack_env: SlackEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """A share with text, or without the `file_share` subtype (newer clients), reaches the core; the
    bot's own messages, edits, and channel chatter with files do not."""
    env = slack_env
    seen = record_events(env.app, monkeypatch)
    await env.event(env.slack.file_share(user_id=ALICE, files={"a.md": b"# A", "b.txt": b"B"}, text="two for you"))
    await env.event(env.slack.file_share(user_id=ALICE, files={"c.csv": b"x,y\n1,2\n"}, subtype=None))
    assert [(e.text, [f.name for f in e.files]) for e in seen if isinstance(e, Message)] == [
        ("two for you", ["a.md", "b.txt"]), ("", ["c.csv"])]

    seen.clear()
    bots = env.slack.file_share(user_id=ALICE, files={"d.md": b"# D"}, subtype="bot_message")
    bots["bot_id"] = "B0OTHER"
    await env.event(bots)
    edited = env.slack.file_share(user_id=ALICE, files={"e.md": b"# E"}, subtype="message_changed")
    await env.event(edited)
    await env.event(env.slack.file_share(user_id=ALICE, files={"f.md": b"# F"}, channel_id=GENERAL))
    assert seen == [] and env.fake.file_downloads == []


async def test_each_workspace_downloads_with_its_own_token(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed in two workspaces by OAuth: a file shared in one is fetched with that workspace's bot
    token (the other's would get the sign-in page)."""
    seen = record_events(app, monkeypatch)
    client_id, client_secret = "1111.2222", "oauth-secret"
    async with FakeSlackAPI(client_id=client_id, client_secret=client_secret, team_id="T0AAA") as fake:
        settings = slack_settings(app, slack_client_id=client_id, slack_client_secret=SecretStr(client_secret))
        adapter = SlackAdapter(app, client=AsyncWebClient(base_url=fake.base_url), settings=settings)
        try:
            async with (
                BoltHTTPServer(adapter.bolt) as server,
                SlackSender(server.url, SECRET, fake=fake, team_id="T0AAA") as in_a,
                SlackSender(server.url, SECRET, fake=fake, team_id="T0BBB") as in_b,
            ):
                tokens: dict[str, str] = {}
                for sender, team in ((in_a, "T0AAA"), (in_b, "T0BBB")):
                    _, redirect = await sender.oauth_install(team_id=team, user_id="U0ADMIN")
                    assert redirect.status == 200, redirect.text
                    access = fake.calls_to("oauth.v2.access")[-1].response
                    assert access is not None
                    tokens[team] = access["access_token"]
                assert tokens["T0AAA"] != tokens["T0BBB"]

                await in_b.event(in_b.file_share(user_id="U0BOB", files={"b-notes.md": NOTES}))
                await adapter.idle()
                (file,) = only_message(seen).files
                assert file.fetch is not None
                assert await file.fetch(1 << 20) == NOTES
                assert fake.file_downloads[-1][1:] == (tokens["T0BBB"], 200)

                url = next(f for f in fake.files.values() if f["name"] == "b-notes.md")["url_private_download"]
                with pytest.raises(DownloadFailed):
                    await download(url, tokens["T0AAA"], 1 << 20)
        finally:
            await adapter.aclose()



# --- the creator's story through the core ---------------------------------------------------------

async def start_draft(env: SlackEnv) -> str:
    """alice: /gpt create, her idea drafted, the name changed; her DM with the bot."""
    dm = env.fake.dm_channel(ALICE)
    await env.command("create", user=ALICE)
    await env.dm(ALICE, "A biology tutor that answers from my course notes")
    assert "Here is a draft" in rendered(env.last(dm))
    await env.dm(ALICE, "change name")
    await env.dm(ALICE, "Biology Helper")
    assert "Biology Helper" in rendered(env.last(dm))
    return dm


async def test_creator_shares_a_docx_in_the_dm_and_members_get_cited_answers(slack_env: SlackEnv) -> None:
    env = slack_env
    dm = await start_draft(env)

    notes = docx_bytes([Heading("Biology notes", 0), Heading("Photosynthesis"), PAGES[1], Heading("Labs"), PAGES[0]])
    await env.event(env.slack.file_share(user_id=ALICE, files={"Biology notes.docx": notes}))
    assert "Added *Biology notes.docx* to your GPT's knowledge" in rendered(env.last(dm))

    await env.event(env.slack.file_share(user_id=ALICE, files={"setup.exe": b"MZ\x90\x00" + bytes(200)}))
    refused = rendered(env.last(dm))
    assert "I cannot use *setup.exe*" in refused and "PDF" in refused
    assert [status for _, _, status in env.fake.file_downloads] == [200]  # the .exe was never downloaded

    await env.dm(ALICE, "publish")
    assert "Published *Biology Helper* (version 1)" in rendered(env.last(dm))
    assert await stored_files(env.app) == ["Biology notes.docx"]

    await env.command("ask biology-helper Which light does chlorophyll absorb?")
    answer = env.fake.messages(GENERAL)[-1]
    system = env.llm.requests[-1]["messages"][0]["content"]
    assert "Chlorophyll absorbs red and blue light" in system and "*Biology notes.docx*" in system
    assert answer["text"].startswith("Answer 1: Which light does chlorophyll absorb?")
    # italic either way: Markdown when it was streamed, mrkdwn when it came whole in one message
    assert answer["text"].rstrip().endswith(("Sources: *Biology notes.docx*", "Sources: _Biology notes.docx_"))


async def test_without_files_read_the_creator_is_told_who_can_fix_it(slack_env: SlackEnv) -> None:
    """An install made before the app asked for `files:read`: Slack answers with its sign-in page,
    which is not taken for the file, and attaching again would not help: an admin must reinstall."""
    env = slack_env
    dm = await start_draft(env)
    env.fake.oauth_scopes = env.fake.oauth_scopes.replace(",files:read", "")
    await env.event(env.slack.file_share(user_id=ALICE, files={"notes.md": NOTES}))
    assert "not allowed to read files here, so *notes.md* was not added" in rendered(env.last(dm))
    assert "reinstall the app" in rendered(env.last(dm))
    assert [status for _, _, status in env.fake.file_downloads] == [302]
    assert await stored_files(env.app) == []
