"""Multi-workspace distribution: Bolt's OAuth flow keeps installations in our database, and every
replica serving the same database authorises that workspace's requests with the stored bot token."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import SlackAdapter
from bot.adapters.slack_store import DatabaseOAuthStateStore
from bot.bootstrap import App
from store.slack_installations import SlackInstallation, SlackOAuthState
from tests.fakes.slack_fake import BoltHTTPServer, FakeSlackAPI, SlackSender
from tests.slack_env import SECRET, rendered, slack_settings

CLIENT_ID, CLIENT_SECRET = "1111.2222", "oauth-secret"


async def _rows(app: App, model: type) -> list:  # type: ignore[type-arg]
    from sqlmodel import select

    async with app.db.reader() as session:
        return list((await session.execute(select(model))).scalars())


def _adapter(app: App, fake: FakeSlackAPI) -> SlackAdapter:
    settings = slack_settings(app, slack_client_id=CLIENT_ID, slack_client_secret=SecretStr(CLIENT_SECRET))
    return SlackAdapter(app, client=AsyncWebClient(base_url=fake.base_url), settings=settings)


async def test_oauth_install_is_stored_and_used_by_every_replica(app: App) -> None:
    async with FakeSlackAPI(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, team_id="T0NEW",
                            team_name="New Team") as fake:
        first, second = _adapter(app, fake), _adapter(app, fake)
        async with (
            BoltHTTPServer(first.bolt) as server, BoltHTTPServer(second.bolt) as replica,
            SlackSender(server.url, SECRET, fake=fake, team_id="T0NEW") as slack,
            SlackSender(replica.url, SECRET, fake=fake, team_id="T0NEW") as via_replica,
        ):
            install, redirect = await slack.oauth_install(team_id="T0NEW", user_id="U0ADMIN")
            assert install.status == 200 and "slack.com/oauth/v2/authorize" in install.text
            assert redirect.status == 200, redirect.text
            (access,) = fake.calls_to("oauth.v2.access")
            token = access.response["access_token"]
            saved = await _rows(app, SlackInstallation)
            assert sorted((r.kind, r.team_id, r.client_id) for r in saved) == [
                ("bot", "T0NEW", CLIENT_ID), ("installation", "T0NEW", CLIENT_ID)]
            assert all(token not in json.dumps(r.data) for r in saved)  # sealed at rest, never in clear
            assert {r.data["bot_token"].startswith("sealed:v1:") for r in saved} == {True}
            assert not await _rows(app, SlackOAuthState)  # the state was used up

            # the same state cannot complete a second install
            query = urlencode({"code": fake.issue_oauth_code(team_id="T0NEW"), "state": install.cookies["slack-app-oauth-state"]})
            replay = await slack.get(f"/slack/oauth_redirect?{query}",
                                     cookies={"slack-app-oauth-state": install.cookies["slack-app-oauth-state"]})
            assert replay.status != 200

            for sender, adapter in ((slack, first), (via_replica, second)):
                result = await sender.slash_command(command="/gpt", text="help", user_id="U0ADMIN", channel_id="C77")
                assert result.status == 200
                await adapter.idle()
            answers = fake.calls_to("chat.postEphemeral")
            assert [c.token for c in answers] == [token, token]
            assert "GPT store" in rendered(fake.ephemerals("C77", "U0ADMIN")[-1])

            # uninstalling removes what was stored; the workspace's requests are no longer served
            await slack.event({"type": "app_uninstalled", "event_ts": "1.0"})
            for _ in range(500):  # Bolt's own uninstall listener runs after its ack
                if not await _rows(app, SlackInstallation):
                    break
                await asyncio.sleep(0.01)
            assert not await _rows(app, SlackInstallation)
            refused = await slack.slash_command(command="/gpt", text="help", user_id="U0ADMIN", channel_id="C77")
            await first.idle()
            assert len(fake.calls_to("chat.postEphemeral")) == 2
            assert refused.status == 200  # Bolt tells the user the app is not installed there
        await first.aclose()
        await second.aclose()


async def test_oauth_states_are_single_use_and_expire(app: App) -> None:
    store = DatabaseOAuthStateStore(app.db)
    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False
    assert await store.async_consume("never-issued") is False
    expired = DatabaseOAuthStateStore(app.db, expiration_seconds=-1)
    assert await expired.async_consume(await expired.async_issue()) is False
