"""The Slack adapter end to end: the real Bolt app over signed HTTP, the fake Slack Web API behind it.

Each test does what a Slack user does (a slash command, a mention, a button, a modal, the Home tab)
and asserts what that user would see in Slack, plus what the store recorded."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from store.models import Account, Gpt, GptStatus, Identity, Invocation, Report, SeenEvent
from tests.slack_env import ALICE, BOB, CAROL, GENERAL, SlackEnv, find_element, rendered


def whisper_blocks(env: SlackEnv, user: str, channel: str = GENERAL) -> list[dict]:
    return [e for e in env.fake.ephemerals(channel, user)]


async def test_discovery_commands(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.publish("Math Tutor")
    await env.publish("Poem Smith", category="Writing", starters=("Write me a haiku",))

    await env.command("")  # `/gpt` alone: the help
    assert "/gpt ask <gpt> <prompt>" in env.whispers(BOB)[-1]
    await env.command("help")
    assert "GPT store" in env.whispers(BOB)[-1]
    await env.command("search tutor")
    assert "Math Tutor" in rendered(whisper_blocks(env, BOB)[-1])
    await env.command("browse Writing")
    listing = rendered(whisper_blocks(env, BOB)[-1])
    assert "Poem Smith" in listing and "Math Tutor" not in listing
    await env.command("top")
    assert "Nobody has used a GPT this week yet." in env.whispers(BOB)[-1]
    await env.command("new")
    assert "Poem Smith" in rendered(whisper_blocks(env, BOB)[-1])
    await env.command("info poem-smith")
    card = env.last(GENERAL)
    assert "Poem Smith" in rendered(card) and "Writing" in rendered(card)
    find_element(card["blocks"], "Write me a haiku")  # the conversation starter is a button
    await env.press(card, "How is this ranked?", user=BOB)
    assert "Ranked by the number of different people" in env.whispers(BOB)[-1]

    await env.command("frobnicate")
    whisper = env.whispers(BOB)[-1]
    assert "Unknown command `/gpt frobnicate`" in whisper and "`/gpt search <query>`" in whisper
    assert all("Something went wrong" not in t for t in env.whispers(BOB))


async def test_asking_rating_reporting(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    await env.command(f"ask {slug} what is 1+1?")
    root, answer = env.fake.messages(GENERAL)[-2:]
    assert answer["thread_ts"] == root["ts"] and answer["text"] == "Answer 1: what is 1+1?"

    await env.press(answer, "👍", user=BOB)
    assert env.whispers(BOB)[-1] == "Thanks for the feedback!"
    await env.press(answer, "Regenerate", user=BOB)
    replies = env.fake.messages(GENERAL, thread_ts=root["ts"])
    assert replies[-1]["text"].endswith(": what is 1+1?") and len(replies) == 3  # root, answer, regenerated

    await env.command(f"rate {slug} 4 Solid")
    assert "You rated *Math Tutor* 4/5" in env.whispers(BOB)[-1]
    await env.command(f"report {slug} It gave a wrong sum")
    assert "The operator will review" in env.whispers(BOB)[-1]
    assert [r.reason for r in await env.rows(Report)] == ["It gave a wrong sum"]
    await env.command("ask nothing-like-it hello")
    assert "No GPT called “nothing-like-it”" in env.whispers(BOB)[-1]


async def test_creator_commands(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    dm = env.fake.dm_channel(ALICE)
    await env.command("mine", user=ALICE)
    assert "Math Tutor" in rendered(whisper_blocks(env, ALICE)[-1])

    await env.command(f"edit {slug}", user=ALICE)
    assert "Editing your GPT" in "\n".join(env.texts(dm))
    await env.dm(ALICE, "cancel")
    assert "Cancelled" in env.texts(dm)[-1]

    await env.command(f"remix {slug}", user=BOB)
    assert "Remixing a GPT" in "\n".join(env.texts(env.fake.dm_channel(BOB)))

    await env.command(f"unpublish {slug}", user=ALICE)
    assert "is unpublished" in env.whispers(ALICE)[-1]
    await env.command(f"delete {slug}", user=ALICE)
    confirm = whisper_blocks(env, ALICE)[-1]
    element = find_element(confirm["blocks"], "Delete for good")
    await env.slack.block_action(action_id=element["action_id"], value=element["value"], user_id=ALICE,
                                 channel_id=GENERAL, message_ts=confirm["message_ts"])
    await env.settle()
    assert "is deleted" in env.whispers(ALICE)[-1]
    assert [g.status for g in await env.rows(Gpt)] == [GptStatus.DELETED]


async def test_use_in_a_dm_answers_by_editing_one_message(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    await env.command(f"use {slug}")
    assert "works in a DM with me" in env.whispers(BOB)[-1]
    dm = env.fake.dm_channel(BOB)
    await env.command(f"use {slug}", channel=dm)
    assert "You are now talking to *Math Tutor*" in env.texts(dm)[-1]
    await env.dm(BOB, "first question")
    await env.dm(BOB, "second question")
    answer = env.fake.messages(dm)[-1]
    assert answer["thread_ts"] is None and answer["edited"]  # top level in the DM, written by chat.update
    assert answer["text"].endswith("Answer 2: second question")
    assert not env.fake.calls_to("chat.startStream")  # a DM answer at top level is not a thread


async def test_a_command_without_its_options_opens_a_modal(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    await env.command("rate")
    (view,) = env.fake.opened_views
    assert view["callback_id"] == "cmd:gpt:rate" and view["title"]["text"] == "/gpt rate"
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"]}
    assert kinds == {"gpt": "external_select", "stars": "static_select", "review": "plain_text_input"}

    # the GPT select asks the core's autocomplete as the user types
    payload = {"type": "block_suggestion", "action_id": "value", "block_id": "gpt", "value": "mat",
               "user": {"id": BOB, "team_id": "T0001"}, "team": {"id": "T0001"}, "api_app_id": "A0001",
               "view": view, "token": "fake-verification-token"}
    suggested = await env.slack.raw(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert suggested.status == 200
    assert suggested.json()["options"] == [{"text": {"type": "plain_text", "text": "Math Tutor", "emoji": True},
                                            "value": slug}]

    submitted = await env.slack.view_submission(
        callback_id="cmd:gpt:rate", private_metadata=view["private_metadata"], user_id=BOB,
        values={"gpt": {"value": {"type": "external_select", "selected_option": {"value": slug}}},
                "stars": {"value": {"type": "static_select", "selected_option": {"value": "5"}}},
                "review": {"value": None}},
    )
    assert submitted.status == 200 and submitted.text == ""  # the modal closes at once
    await env.settle()
    assert "You rated *Math Tutor* 5/5" in env.whispers(BOB, GENERAL)[-1]

    await env.command(f"report {slug}")
    report_view = env.fake.opened_views[-1]
    gpt_block = next(b for b in report_view["blocks"] if b["block_id"] == "gpt")
    assert gpt_block["element"]["initial_option"]["value"] == slug  # what was typed is kept


async def test_app_home_is_the_storefront(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.publish("Math Tutor")
    await env.event(env.slack.app_home_opened(user_id=ALICE))
    home = env.fake.home_view(ALICE)
    assert home["type"] == "home"
    shown = rendered(home)
    assert "Top this week" in shown and "New" in shown and "Math Tutor" in shown
    assert "My GPTs" in shown and "0 uses" in shown  # alice is the creator

    search = find_element(home["blocks"], "Search")
    await env.slack.block_action(action_id=search["action_id"], value=search["value"], user_id=BOB, channel_id=None,
                                 message_ts=None, view=home)
    await env.settle()
    modal = env.fake.opened_views[-1]
    assert modal["callback_id"] == "search-submit"
    await env.slack.view_submission(callback_id="search-submit", private_metadata=modal["private_metadata"],
                                    values={"query": {"value": "tutor"}}, user_id=BOB)
    await env.settle()
    results = env.fake.messages(env.fake.dm_channel(BOB))[-1]  # from the Home tab: in the Messages tab
    assert "Math Tutor" in rendered(results)

    category = find_element(home["blocks"], "Browse a category")
    option = next(o for o in category["options"] if o["value"] == "Education")
    await env.slack.block_action(action_id=category["action_id"], value="", user_id=BOB, channel_id=None,
                                 message_ts=None, view=home,
                                 action={"action_id": category["action_id"], "type": "static_select",
                                         "block_id": "b", "selected_option": option})
    await env.settle()
    assert "Browse: Education" in rendered(env.fake.messages(env.fake.dm_channel(BOB))[-1])


async def test_dm_builder_field_by_field_with_buttons_and_selects(slack_env: SlackEnv) -> None:
    env = slack_env
    dm = env.fake.dm_channel(CAROL)
    await env.command("create", user=CAROL, channel=dm)
    assert not env.whispers(CAROL)  # already in the DM: no "I sent you a DM"
    for text in ("fields", "Haiku Cat", "Writes a haiku about your cat.", "You write one 5-7-5 haiku.", "skip"):
        await env.dm(CAROL, text)
    await env.press(env.last(dm), "Category", user=CAROL, value="Writing")
    await env.press(env.last(dm), "Model", user=CAROL, value="gpt-4o")
    await env.press(env.last(dm), "unlisted", user=CAROL)
    await env.press(env.last(dm), "Publish", user=CAROL)
    assert "Published *Haiku Cat* (version 1)" in rendered(env.last(dm))
    (gpt,) = await env.rows(Gpt)
    assert (gpt.name, gpt.category, gpt.visibility) == ("Haiku Cat", "Writing", "unlisted")


async def test_mention_answers_in_its_thread_and_the_thread_continues(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    mention = env.slack.app_mention(user_id=BOB, channel_id=GENERAL, text=f"{slug}: what is 2+2?")
    await env.event(mention)
    # Slack also delivers the same message as message.channels: it must not be answered twice
    await env.event({**env.slack.message_in_thread(user_id=BOB, channel_id=GENERAL, thread_ts=mention["ts"],
                                                   text="ignored"), "text": mention["text"], "ts": mention["ts"]})
    (answer,) = env.fake.messages(GENERAL, thread_ts=mention["ts"])
    assert answer["text"] == "**Math Tutor** · by Alice\n\nAnswer 1: what is 2+2?"  # streamed as Markdown
    await env.event(env.slack.message_in_thread(user_id=BOB, channel_id=GENERAL, thread_ts=mention["ts"],
                                                text="and 3+3?"))
    assert env.texts(GENERAL, mention["ts"])[-1].endswith("Answer 2: and 3+3?")
    await env.event(env.slack.message_in_thread(user_id=CAROL, channel_id=GENERAL, thread_ts="1.000001",
                                                text="a thread the bot does not follow"))
    assert len(await env.rows(Invocation)) == 2

    await env.event(env.slack.app_mention(user_id=BOB, channel_id=GENERAL, text="hello there"))
    assert "To talk to a GPT, write `<gpt>: your question`" in env.whispers(BOB)[-1]


async def test_streaming_with_slack_stream_methods(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Long Talker")
    env.llm.responder = lambda messages, model: " ".join(f"word{i}" for i in range(40))
    env.llm.token_rate = 200  # the answer takes a while, so it is shown as it comes
    await env.command(f"ask {slug} talk")
    answer = env.last(GENERAL)
    assert answer["text"] == " ".join(f"word{i}" for i in range(40)) and answer["streaming"] is False
    appends = env.fake.calls_to("chat.appendStream")
    assert len(env.fake.calls_to("chat.startStream")) == 1 and len(env.fake.calls_to("chat.stopStream")) == 1
    assert 1 <= len(appends) < 40  # paced: several tokens per append
    assert find_element(answer["blocks"], "Regenerate")  # the buttons come with stopStream
    assert not env.fake.calls_to("chat.update")


async def test_an_ask_streams_from_its_first_words_or_posts_a_whole_answer_once(slack_env: SlackEnv) -> None:
    """Under `/gpt ask`'s root message (on screen already) nothing is posted in the thread before
    the answer's first words; an answer whole by then is one message, buttons included."""
    from bot.adapters.slack_outbox import SlackOutbox, Surface, Where
    from bot.replies import Button, Reply

    env = slack_env
    buttons = (Button("Regenerate", "regen:1"),)

    def outbox() -> SlackOutbox:
        return SlackOutbox(env.adapter, env.adapter.bolt.client, Surface.COMMAND,
                           Where("T0001", BOB, GENERAL, prompt="what is 6 x 7?"), str)

    async def at_once() -> AsyncIterator[str]:  # the model's whole answer in one read
        for piece in ("The answer ", "is ", "42."):
            yield piece

    sent = await outbox().send(Reply(stream=at_once(), actions=buttons))
    (answer,) = env.fake.messages(GENERAL, sent.thread_id)[1:]
    assert answer["text"] == "The answer is 42." and find_element(answer["blocks"], "Regenerate")
    assert [c.method for c in env.fake.calls[-2:]] == ["chat.postMessage", "chat.postMessage"]  # root, answer

    calls_before_words: list[str] = []

    async def slowly() -> AsyncIterator[str]:
        await asyncio.sleep(0.1)  # the model thinking
        calls_before_words.extend(c.method for c in env.fake.calls[mark:])
        for word in ("one ", "two ", "three"):
            yield word
            await asyncio.sleep(0.06)

    mark = len(env.fake.calls)
    sent = await outbox().send(Reply(stream=slowly(), actions=buttons))
    assert calls_before_words == ["chat.postMessage"]  # the root message only
    (start,) = env.fake.calls_to("chat.startStream")
    assert start.args["markdown_text"] == "one "  # the stream begins with the first words
    (answer,) = env.fake.messages(GENERAL, sent.thread_id)[1:]
    assert answer["text"] == "one two three" and find_element(answer["blocks"], "Regenerate")


async def test_streaming_falls_back_to_paced_chat_update(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Long Talker")
    env.fake.streaming_supported = False
    env.llm.responder = lambda messages, model: " ".join(f"word{i}" for i in range(40))
    env.llm.token_rate = 200
    await env.command(f"ask {slug} talk")
    await env.command(f"ask {slug} again")
    answer = env.last(GENERAL)
    assert answer["text"] == " ".join(f"word{i}" for i in range(40)) and answer["edited"]
    assert find_element(answer["blocks"], "Regenerate")
    assert len(env.fake.calls_to("chat.startStream")) == 1  # tried once for this workspace, then remembered
    updates = [c for c in env.fake.calls_to("chat.update") if c.args["ts"] == answer["ts"]]
    assert 2 <= len(updates) < 40  # some edits while it streamed, then the final one, never one per token


async def test_an_expired_stream_is_finished_by_an_edit(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Long Talker")
    env.fake.stream_expiry = 0.0
    env.llm.responder = lambda messages, model: " ".join(f"word{i}" for i in range(20))
    env.llm.token_rate = 200
    await env.command(f"ask {slug} talk")
    answer = env.last(GENERAL)
    assert answer["text"] == " ".join(f"word{i}" for i in range(20))
    assert find_element(answer["blocks"], "Regenerate")


async def test_a_retried_event_is_answered_once(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    mention = env.slack.app_mention(user_id=BOB, channel_id=GENERAL, text=f"{slug}: hi")
    first, retry, late = await asyncio.gather(
        env.slack.event(mention, event_id="Ev0DUP0001"),
        env.slack.event(mention, event_id="Ev0DUP0001", retry_num=1, retry_reason="http_timeout"),
        env.slack.event(mention, event_id="Ev0DUP0001", retry_num=2),
    )
    assert first.status == retry.status == late.status == 200
    await env.settle()
    assert env.texts(GENERAL, mention["ts"]) == ["**Math Tutor** · by Alice\n\nAnswer 1: hi"]
    assert len(env.llm.requests) == 1 and len(await env.rows(Invocation)) == 1


async def test_requests_are_acknowledged_before_the_work(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    env.llm.stall_next(after_tokens=1)  # the model hangs after one token
    result = await env.slack.slash_command(command="/gpt", text=f"ask {slug} hi", user_id=BOB, channel_id=GENERAL)
    assert result.status == 200 and result.text == ""  # Slack got its empty ack while the model hangs
    assert not env.fake.calls_to("chat.stopStream")
    await env.settle()
    assert "cut off" in env.last(GENERAL)["text"]  # and the user hears how it ended


async def test_bad_signature_and_stale_timestamp_are_refused(slack_env: SlackEnv) -> None:
    env = slack_env
    body = urlencode({"command": "/gpt", "text": "help", "user_id": BOB, "channel_id": GENERAL, "team_id": "T0001",
                      "trigger_id": "1.2.3", "response_url": "http://127.0.0.1:9/none"})
    form = "application/x-www-form-urlencoded"
    assert (await env.slack.raw(body, form, signature="v0=" + "0" * 64)).status == 401
    assert (await env.slack.raw(body, form, timestamp=int(time.time()) - 600)).status == 401
    envelope = json.dumps(env.slack.envelope(env.slack.app_mention(user_id=BOB, channel_id=GENERAL, text="x: y")))
    assert (await env.slack.raw(envelope, "application/json", signature="v0=" + "1" * 64)).status == 401
    await env.settle()
    assert not [c for c in env.fake.calls if c.method.startswith(("chat.", "users."))]
    assert not [e for e in await env.rows(SeenEvent) if e.key.startswith("slack:")]
    assert not [i for i in await env.rows(Identity) if i.platform == "slack"]


async def test_admin_commands_need_a_workspace_admin(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.command("policy", command="/gpt-admin")
    assert "Only this server's admins can use `/gpt-admin policy`" in env.whispers(BOB)[-1]
    env.fake.admins.add(CAROL)  # users.info says is_admin
    await env.command("policy", command="/gpt-admin", user=CAROL)
    carol_sees = rendered(whisper_blocks(env, CAROL)[-1]) if whisper_blocks(env, CAROL) else env.texts(GENERAL)[-1]
    assert "Only this server's admins" not in carol_sees
    await env.command("", command="/gpt-admin")
    assert "/gpt-admin block <gpt>" in env.whispers(BOB)[-1]


async def test_configured_admin_users_and_locale_come_from_slack(slack_env: SlackEnv, app) -> None:  # type: ignore[no-untyped-def]
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.adapters.slack import SlackAdapter
    from tests.slack_env import slack_settings

    env = slack_env
    env.fake.add_user("UFRANCE1", "amelie", locale="fr-FR", real_name="Amélie", display_name="")
    adapter = SlackAdapter(app, client=AsyncWebClient(token="xoxb-test", base_url=env.fake.base_url),
                           settings=slack_settings(app, slack_admin_users=[BOB]))
    bob = await adapter.actor(adapter.bolt.client, "T0001", BOB)
    amelie = await adapter.actor(adapter.bolt.client, "T0001", "UFRANCE1")
    await adapter.aclose()
    assert (bob.is_admin, bob.display_name) == (True, "Bob")
    assert (amelie.is_admin, amelie.display_name, amelie.locale) == (False, "Amélie", "fr-FR")

    await env.command("help", user="UFRANCE1")
    (account,) = [a for a in await env.rows(Account) if a.display_name == "Amélie"]
    assert account.locale == "fr"


async def test_public_replies_use_the_response_url_where_the_bot_is_not_a_member(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor")
    env.fake.fail["chat.postMessage"] = "not_in_channel"
    await env.command(f"info {slug}", channel="COTHER01")
    (posted,) = env.fake.calls_to("response_url")
    assert posted.args["response_type"] == "in_channel" and "Math Tutor" in json.dumps(posted.args["blocks"])


async def test_paging_an_ephemeral_list_replaces_it(slack_env: SlackEnv) -> None:
    env = slack_env
    for n in range(7):
        await env.publish(f"Tutor Number {n}")
    await env.command("search tutor")
    page = whisper_blocks(env, BOB)[-1]
    nxt = find_element(page["blocks"], "Next ▶")
    await env.slack.block_action(action_id=nxt["action_id"], value=nxt["value"], user_id=BOB, channel_id=GENERAL,
                                 message_ts=page["message_ts"])
    await env.settle()
    (replaced,) = env.fake.calls_to("response_url")
    assert replaced.args["replace_original"] is True and "page 2" in replaced.args["text"]


async def test_the_assistant_pane_suggests_gpts_and_chats(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Math Tutor", starters=("Explain fractions",))
    started = env.slack.assistant_thread_started(user_id=BOB)
    thread = started["assistant_thread"]
    await env.event(started)
    channel, thread_ts = thread["channel_id"], thread["thread_ts"]
    greeting = env.fake.messages(channel, thread_ts)[-1]
    assert "Pick one below" in rendered(greeting)
    prompts = env.fake.suggested_prompts[(channel, thread_ts)]["prompts"]
    assert prompts == [{"title": "Math Tutor", "message": f"{slug}: Explain fractions"}]

    await env.event(env.slack.assistant_user_message(user_id=BOB, channel_id=channel, thread_ts=thread_ts,
                                                     text=prompts[0]["message"]))
    assert env.fake.thread_status[(channel, thread_ts)] == "is thinking…"
    await env.event(env.slack.assistant_user_message(user_id=BOB, channel_id=channel, thread_ts=thread_ts,
                                                     text="and decimals?"))
    answers = env.texts(channel, thread_ts)
    assert answers[-2].endswith("Answer 1: Explain fractions") and answers[-1].endswith("Answer 2: and decimals?")
    assert len(env.fake.calls_to("chat.startStream")) == 2  # streamed into the assistant thread

    calls = len(env.fake.calls)
    changed = {"type": "assistant_thread_context_changed", "event_ts": "1.0", "assistant_thread": {
        **thread, "context": {"channel_id": GENERAL, "team_id": "T0001", "enterprise_id": None}}}
    await env.event(changed)  # the channel the user looks at does not change the conversation
    assert len(env.fake.calls) == calls

    await env.press(greeting, "Choose a GPT", user=BOB, value=slug + ": Explain fractions")
    assert env.texts(channel, thread_ts)[-1].endswith("Answer 1: Explain fractions")


async def test_a_builder_field_is_edited_in_a_modal(slack_env: SlackEnv) -> None:
    env = slack_env
    dm = env.fake.dm_channel(ALICE)
    await env.command("create", user=ALICE, channel=dm)
    await env.dm(ALICE, "A patient math tutor for high school algebra homework")
    await env.press(env.last(dm), "Change a field…", user=ALICE, value="instructions")
    prompt = env.last(dm)
    assert "Its instructions" in rendered(prompt)
    await env.press(prompt, "Edit in a form", user=ALICE)
    modal = env.fake.opened_views[-1]
    (field,) = modal["blocks"]
    assert field["element"]["multiline"] and "A patient math tutor" in field["element"]["initial_value"]
    await env.slack.view_submission(callback_id=modal["callback_id"], private_metadata=modal["private_metadata"],
                                    values={"value": {"value": "You tutor algebra, one hint at a time."}}, user_id=ALICE)
    await env.settle()
    review = rendered(env.last(dm))
    assert "Your draft" in review and "You tutor algebra, one hint at a time." in review


async def test_closed_dms_and_new_threads(slack_env: SlackEnv) -> None:
    from bot.adapters.slack_outbox import SlackOutbox, Surface, Where
    from bot.replies import Reply, Target

    env = slack_env
    env.fake.fail["conversations.open"] = "cannot_dm_bot"
    await env.command("create", user=CAROL)
    assert "I cannot send you a direct message" in env.whispers(CAROL)[-1]

    posted = await env.adapter.bolt.client.chat_postMessage(channel=GENERAL, text="an answer with no thread yet")
    outbox = SlackOutbox(env.adapter, env.adapter.bolt.client, Surface.ACTION,
                         Where("T0001", BOB, GENERAL, message_ts=posted["ts"]), str)
    sent = await outbox.send(Reply(text="Continuing here.", target=Target.NEW_THREAD, thread_name="x"))
    assert sent.thread_id == posted["ts"] and env.texts(GENERAL, posted["ts"])[-1] == "Continuing here."


async def test_an_answer_never_pings_anyone(slack_env: SlackEnv) -> None:
    env = slack_env
    slug = await env.publish("Echo Bot")
    await env.command(f"ask {slug} say <!channel> <!here> <@U0BOT0001> @everyone")
    answer = env.fake.messages(GENERAL)[-1]
    posted = json.dumps(answer)
    assert "<!channel>" not in posted and "<!here>" not in posted and "<@U0BOT0001>" not in posted
    assert "&lt;!channel&gt;" in answer["text"]
