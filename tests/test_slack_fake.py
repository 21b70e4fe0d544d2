"""The Slack fake drives the real slack-bolt AsyncApp over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_fake import (
    BoltHTTPServer,
    FakeSlackAPI,
    MemoryInstallationStore,
    MemoryOAuthStateStore,
    SlackSender,
    next_ts,
    sign_request,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
POST_DELAY = 0.3  # the /gpt listener posts this long after it acked


@pytest.fixture
async def fake():
    async with FakeSlackAPI() as api:
        yield api


def build_app(fake: FakeSlackAPI, seen: dict) -> AsyncApp:
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token="xoxb-test", base_url=fake.base_url),
    )

    @app.command("/gpt")
    async def gpt(ack, command, client):
        await ack()
        await asyncio.sleep(POST_DELAY)
        await client.chat_postMessage(channel=command["channel_id"], text=f"you asked: {command['text']}")

    @app.event("app_mention")
    async def mention(event, say, request):
        seen["mention_headers"] = request.headers
        await say(text="on it", thread_ts=event.get("thread_ts") or event["ts"])

    @app.action("rate_up")
    async def rate_up(ack, body, client, respond):
        await ack()
        await respond(text=f"thanks for rating {body['actions'][0]['value']}", replace_original=True)
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "gpt_review",
                "private_metadata": body["actions"][0]["value"],
                "title": {"type": "plain_text", "text": "Review"},
                "submit": {"type": "plain_text", "text": "Send"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "review",
                        "label": {"type": "plain_text", "text": "Review"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.view("gpt_review")
    async def review(ack, view, body):
        text = view["state"]["values"]["review"]["text"]["value"]
        if not text:
            await ack(response_action="errors", errors={"review": "Write something"})
            return
        seen["review"] = (body["user"]["id"], view["private_metadata"], text)
        await ack()

    @app.event("message")
    async def dm(message, say_stream, set_status):
        seen["dm"] = message
        await set_status(status="is thinking...")
        streamer = await say_stream(buffer_size=8)
        for piece in ["Hello ", "there, ", "this is ", "a streamed ", "answer."]:
            await streamer.append(markdown_text=piece)
        await streamer.stop()

    @app.event("app_home_opened")
    async def home(event, client, context):
        info = await client.users_info(user=event["user"], include_locale=True)
        admin = info["user"]["is_admin"]
        await client.views_publish(
            user_id=event["user"],
            view={
                "type": "home",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": f"admin={admin}"}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": info["user"]["locale"]}]},
                ],
            },
        )

    return app


@pytest.fixture
async def bolt(fake):
    seen: dict = {}
    app = build_app(fake, seen)
    async with BoltHTTPServer(app) as server, SlackSender(server.url, SECRET, fake=fake) as slack:
        yield slack, seen


# ------------------------------------------------------------------------------------------ signing


def test_signature_matches_slack_sdk_verifier():
    body = "token=x&team_id=T0001&command=%2Fgpt&text=hello+world"
    ts = int(time.time())
    sig = sign_request(SECRET, ts, body)
    verifier = SignatureVerifier(SECRET)
    assert sig == verifier.generate_signature(timestamp=str(ts), body=body)
    assert verifier.is_valid(body=body, timestamp=str(ts), signature=sig)


# ------------------------------------------------------------------------------------------ Bolt over HTTP


async def test_slash_command_acks_within_the_request_then_posts(fake, bolt):
    slack, _ = bolt
    res = await slack.slash_command(command="/gpt", text="search cats", user_id="U1", channel_id="C1")
    assert res.status == 200
    # the ack came back before the listener's follow-up work (which waits POST_DELAY, then posts)
    assert fake.calls_to("chat.postMessage") == []
    assert fake.calls_to("auth.test")  # Bolt's single-team authorization ran against the fake

    (call,) = await fake.wait_for("chat.postMessage")
    assert call.args["channel"] == "C1"
    assert call.args["text"] == "you asked: search cats"
    assert call.token == "xoxb-test"
    assert call.response["ok"] is True and call.response["channel"] == "C1"
    assert call.response["message"]["bot_id"] == fake.bot_id
    assert [m["text"] for m in fake.messages("C1")] == ["you asked: search cats"]


async def test_app_mention_replies_in_thread(fake, bolt):
    slack, _ = bolt
    event = slack.app_mention(user_id="U2", channel_id="C9", text="find me a poet")
    assert event["text"] == f"<@{fake.bot_user_id}> find me a poet"
    res = await slack.event(event)
    assert res.status == 200
    (call,) = await fake.wait_for("chat.postMessage")
    assert call.args["channel"] == "C9"
    assert call.args["thread_ts"] == event["ts"]
    assert [m["text"] for m in fake.messages("C9", thread_ts=event["ts"])] == ["on it"]

    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    replies = await client.conversations_replies(channel="C9", ts=event["ts"])
    assert [m["text"] for m in replies["messages"]] == [event["text"], "on it"]
    assert replies["messages"][0]["reply_count"] == 1


async def test_retried_event_carries_retry_headers_to_bolt(fake, bolt):
    slack, seen = bolt
    event = slack.app_mention(user_id="U2", channel_id="C9", text="again")
    res = await slack.event(event, event_id="Ev0RETRY1", retry_num=2, retry_reason="http_timeout")
    assert res.status == 200
    assert res.payload["event_id"] == "Ev0RETRY1"
    await fake.wait_for("chat.postMessage")
    headers = seen["mention_headers"]
    assert headers["x-slack-retry-num"] == ["2"]
    assert headers["x-slack-retry-reason"] == ["http_timeout"]


async def test_bad_signature_and_stale_timestamp_are_refused(fake, bolt):
    slack, _ = bolt
    body = urlencode(
        {"command": "/gpt", "text": "x", "user_id": "U1", "channel_id": "C1", "team_id": "T0001"}
    )
    ctype = "application/x-www-form-urlencoded"
    bad = await slack.raw(body, ctype, signature="v0=" + "0" * 64)
    assert bad.status == 401
    stale = await slack.raw(body, ctype, timestamp=int(time.time()) - 600)  # correctly signed, 10 min old
    assert stale.status == 401
    wrong_secret = SlackSender(slack.url, "not-the-secret")
    try:
        res = await wrong_secret.slash_command(command="/gpt", text="x", user_id="U1", channel_id="C1")
    finally:
        await wrong_secret.aclose()
    assert res.status == 401
    await asyncio.sleep(0.05)
    assert fake.calls_to("chat.postMessage") == []


async def test_button_respond_views_open_and_view_submission(fake, bolt):
    slack, seen = bolt
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    posted = await client.chat_postMessage(channel="C5", text="Rate this GPT")
    res = await slack.block_action(
        action_id="rate_up", value="gpt-42", user_id="U3", channel_id="C5", message_ts=posted["ts"]
    )
    assert res.status == 200
    assert res.payload["message"]["text"] == "Rate this GPT"  # the real message being clicked
    await fake.wait_for("views.open")
    (resp,) = await fake.wait_for("response_url")
    assert resp.args["replace_original"] is True
    assert fake.messages("C5")[0]["text"] == "thanks for rating gpt-42"  # replaced in place

    (opened,) = fake.opened_views
    assert opened["callback_id"] == "gpt_review" and opened["private_metadata"] == "gpt-42"

    empty = await slack.view_submission(
        callback_id="gpt_review", private_metadata="gpt-42", values={"review": {"text": ""}}, user_id="U3"
    )
    assert empty.status == 200
    assert empty.json() == {"response_action": "errors", "errors": {"review": "Write something"}}
    ok = await slack.view_submission(
        callback_id="gpt_review",
        private_metadata="gpt-42",
        values={"review": {"text": "lovely"}},
        user_id="U3",
    )
    assert ok.status == 200 and ok.text == ""
    assert seen["review"] == ("U3", "gpt-42", "lovely")
    assert ok.payload["view"]["id"] == opened["id"]


async def test_expired_trigger_is_refused(fake):
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    fake.trigger_ttl = 0.0
    trigger = fake.issue_trigger_id()
    await asyncio.sleep(0.01)
    with pytest.raises(SlackApiError) as err:
        await client.views_open(
            trigger_id=trigger, view={"type": "modal", "title": {"type": "plain_text", "text": "x"}}
        )
    assert err.value.response["error"] == "expired_trigger_id"


async def test_dm_streams_a_reply_with_bolt_say_stream(fake, bolt):
    slack, seen = bolt
    event = slack.message_im(user_id="U4", text="hi")
    res = await slack.event(event)
    assert res.status == 200
    await fake.wait_for("chat.stopStream")
    assert seen["dm"]["channel"] == "DU4"
    assert fake.thread_status[("DU4", event["ts"])] == "is thinking..."
    starts = fake.calls_to("chat.startStream")
    assert len(starts) == 1 and starts[0].args["thread_ts"] == event["ts"]
    assert starts[0].args["recipient_user_id"] == "U4" and starts[0].args["recipient_team_id"] == "T0001"
    assert fake.calls_to("chat.appendStream")  # buffer_size=8 forces several appends
    (msg,) = fake.messages("DU4", thread_ts=event["ts"])
    assert msg["text"] == "Hello there, this is a streamed answer."
    assert msg["streaming"] is False


async def test_app_home_opened_publishes_home_with_users_info(fake, bolt):
    slack, _ = bolt
    fake.add_user("U7", "ana", locale="pt-BR", tz="America/Sao_Paulo")
    fake.admins.add("U7")
    res = await slack.event(slack.app_home_opened(user_id="U7"))
    assert res.status == 200
    await fake.wait_for("views.publish")
    home = fake.home_view("U7")
    assert home["type"] == "home"
    assert home["blocks"][0]["text"]["text"] == "admin=True"
    assert home["blocks"][1]["elements"][0]["text"] == "pt-BR"
    # a second open carries the published view, like Slack does
    assert slack.app_home_opened(user_id="U7")["view"]["id"] == home["id"]


async def test_two_hundred_concurrent_commands(fake, bolt):
    slack, _ = bolt
    results = await asyncio.gather(
        *(
            slack.slash_command(command="/gpt", text=f"q{i}", user_id=f"U{i}", channel_id="C200")
            for i in range(200)
        )
    )
    assert [r.status for r in results] == [200] * 200
    await fake.wait_for("chat.postMessage", count=200, timeout=20)
    assert len(fake.messages("C200")) == 200


# ------------------------------------------------------------------------------------------ Web API fake


async def test_web_api_shapes(fake):
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    auth = await client.auth_test()
    assert auth["team_id"] == fake.team_id and auth["user_id"] == fake.bot_user_id
    assert auth["bot_id"] == fake.bot_id
    assert auth["enterprise_id"] is None and auth["is_enterprise_install"] is False

    opened = await client.conversations_open(users="U9")
    assert opened["channel"]["id"] == "DU9"
    info = await client.conversations_info(channel="DU9")
    assert info["channel"]["is_im"] is True and info["channel"]["user"] == "U9"

    fake.owners.add("U9")
    user = (await client.users_info(user="U9"))["user"]
    assert user["is_owner"] is True and user["is_admin"] is True and "locale" not in user

    first = await client.chat_postMessage(channel="C1", text="one")
    second = await client.chat_postMessage(channel="C1", text="two", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["thread_ts"] == first["ts"]
    updated = await client.chat_update(channel="C1", ts=first["ts"], text="one (edited)")
    assert updated["text"] == "one (edited)"
    eph = await client.chat_postEphemeral(channel="C1", user="U9", text="psst")
    assert "message_ts" in eph and fake.ephemerals("C1", "U9")[0]["text"] == "psst"
    await client.reactions_add(channel="C1", timestamp=first["ts"], name="eyes")
    with pytest.raises(SlackApiError) as err:
        await client.reactions_add(channel="C1", timestamp=first["ts"], name="eyes")
    assert err.value.response["error"] == "already_reacted"
    await client.chat_delete(channel="C1", ts=second["ts"])
    assert [m["text"] for m in fake.messages("C1")] == ["one (edited)"]

    fake.add_file("F1", "notes.txt", size=5)
    assert (await client.files_info(file="F1"))["file"]["name"] == "notes.txt"
    with pytest.raises(SlackApiError):
        await client.files_info(file="F404")

    await client.assistant_threads_setSuggestedPrompts(
        channel_id="DU9", thread_ts=first["ts"], prompts=[{"title": "Try", "message": "Try me"}]
    )
    await client.assistant_threads_setTitle(channel_id="DU9", thread_ts=first["ts"], title="Cats")
    assert fake.thread_titles[("DU9", first["ts"])] == "Cats"

    # form-encoded calls are decoded too (token in the body, blocks as JSON)
    await AsyncWebClient(base_url=fake.base_url).api_call(
        "chat.postMessage",
        data={
            "token": "xoxb-form",
            "channel": "C2",
            "text": "f",
            "blocks": json.dumps([{"type": "divider"}]),
        },
    )
    form_call = fake.calls_to("chat.postMessage")[-1]
    assert form_call.token == "xoxb-form" and form_call.args["blocks"] == [{"type": "divider"}]


async def test_failures_unknown_methods_and_rate_limits(fake):
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    fake.fail["chat.postMessage"] = "channel_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "channel_not_found"
    del fake.fail["chat.postMessage"]
    await client.chat_postMessage(channel="C1", text="x")

    with pytest.raises(SlackApiError) as err:
        await client.api_call("gpt.doesNotExist")
    assert err.value.response["error"] == "unknown_method"
    assert fake.calls_to("gpt.doesNotExist")

    fake.rate_limited["chat.update"] = 7
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.0", text="y")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"

    nobody = AsyncWebClient(base_url=fake.base_url)
    with pytest.raises(SlackApiError) as err:
        await nobody.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_authed"


async def test_streaming_methods_through_async_web_client(fake):
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    parent = next_ts()
    start = await client.chat_startStream(
        channel="C3", thread_ts=parent, recipient_team_id="T0001", recipient_user_id="U1", markdown_text="Hel"
    )
    assert start["ok"] and start["channel"] == "C3"
    await client.chat_appendStream(channel="C3", ts=start["ts"], markdown_text="lo ")
    assert fake.messages("C3")[0]["streaming"] is True
    stop = await client.chat_stopStream(
        channel="C3", ts=start["ts"], markdown_text="world", blocks=[{"type": "divider"}]
    )
    assert stop["message"]["text"] == "Hello world"
    (msg,) = fake.messages("C3", thread_ts=parent)
    assert msg["text"] == "Hello world" and msg["blocks"] == [{"type": "divider"}] and not msg["streaming"]
    with pytest.raises(SlackApiError) as err:
        await client.chat_appendStream(channel="C3", ts=start["ts"], markdown_text="more")
    assert err.value.response["error"] == "message_not_in_streaming_state"

    # the chat_stream helper (buffers, then startStream/appendStream/stopStream with chunks)
    streamer = await client.chat_stream(
        channel="C3", thread_ts=parent, recipient_team_id="T0001", recipient_user_id="U1", buffer_size=4
    )
    for piece in ["a", "bcd", "ef", "g"]:
        await streamer.append(markdown_text=piece)
    await streamer.stop(markdown_text="!")
    assert fake.message("C3", streamer.ts)["text"] == "abcdefg!"

    # streaming to a channel needs the recipient
    with pytest.raises(SlackApiError):
        await client.chat_startStream(channel="C3", thread_ts=parent, markdown_text="x")

    fake.streaming_supported = False
    with pytest.raises(SlackApiError) as err:
        await client.chat_startStream(channel="DU1", thread_ts=parent, markdown_text="x")
    assert err.value.response["error"] == "unknown_method"


# ------------------------------------------------------------------------------------------ OAuth


async def test_oauth_install_flow(fake):
    installations = MemoryInstallationStore()
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(base_url=fake.base_url),  # the OAuth flow and per-request clients use it
        oauth_settings=AsyncOAuthSettings(
            client_id="111.222",
            client_secret="shh",
            scopes=["commands", "chat:write", "app_mentions:read"],
            installation_store=installations,
            state_store=MemoryOAuthStateStore(),
        ),
    )
    fake.client_id, fake.client_secret = "111.222", "shh"

    @app.command("/gpt")
    async def gpt(ack, command, client):
        await ack()
        await client.chat_postMessage(channel=command["channel_id"], text="installed and working")

    async with (
        BoltHTTPServer(app) as server,
        SlackSender(server.url, SECRET, fake=fake, team_id="T0NEW") as slack,
    ):
        install = await slack.get("/slack/install")
        assert install.status == 200
        state = install.cookies["slack-app-oauth-state"]
        assert f"state={state}" in install.text and "client_id=111.222" in install.text

        code = fake.issue_oauth_code(team_id="T0NEW", team_name="New Team", user_id="U0ADMIN")
        redirect = await slack.get(
            f"/slack/oauth_redirect?{urlencode({'code': code, 'state': state})}",
            cookies={"slack-app-oauth-state": state},
        )
        assert redirect.status == 200, redirect.text
        (access,) = fake.calls_to("oauth.v2.access")
        assert access.args["code"] == code and access.args["client_id"] == "111.222"
        bot_token = access.response["access_token"]
        assert bot_token.startswith("xoxb-")
        assert access.response["team"] == {"id": "T0NEW", "name": "New Team"}

        bot = await installations.async_find_bot(enterprise_id=None, team_id="T0NEW")
        assert bot is not None and bot.bot_token == bot_token and bot.bot_id == fake.bot_id
        inst = await installations.async_find_installation(enterprise_id=None, team_id="T0NEW")
        assert inst.user_id == "U0ADMIN" and inst.bot_user_id == fake.bot_user_id

        # a stale/forged state is refused, and a code cannot be used twice
        again = await slack.get(
            f"/slack/oauth_redirect?{urlencode({'code': code, 'state': state})}",
            cookies={"slack-app-oauth-state": state},
        )
        assert again.status != 200

        # the installed workspace's requests are authorised with the stored bot token
        res = await slack.slash_command(command="/gpt", text="", user_id="U0ADMIN", channel_id="C77")
        assert res.status == 200
        (post,) = await fake.wait_for("chat.postMessage")
        assert post.token == bot_token and post.args["channel"] == "C77"

        # the helper does the same walk in one call
        install2, redirect2 = await slack.oauth_install(team_id="T0NEW")
        assert install2.status == 200 and redirect2.status == 200
