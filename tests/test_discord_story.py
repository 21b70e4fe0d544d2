"""The core issue's story on Discord, through the real discord.py and the fake Discord: alice builds
and publishes a GPT in her DM with the bot, bob finds it with /gpt search, asks it in #general,
goes on in a thread and rates it; the invocations table holds bob's uses, not alice's previews."""

from __future__ import annotations

from typing import Any

import discord
from sqlmodel import select

from bot.bootstrap import App
from store.models import BuilderDraft, Identity, Invocation, Rating
from tests.discord_support import (
    ALICE,
    BOB,
    EPHEMERAL,
    GENERAL,
    World,
    components,
    labels,
    offline_world,
    visible_text,
    world,
)
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["offline_world", "world"]


async def rows(app: App, model: Any) -> list[Any]:
    async with app.db.reader() as session:
        return list((await session.execute(select(model))).scalars())


async def build_tutor(w: World) -> None:
    """alice: /gpt create in #general; the builder goes on in her DM: the LLM drafts from her idea,
    she renames it with the "Change a field…" select, previews it and presses Publish."""
    h = await w.command(ALICE, "create")
    notice = await h.wait_original()
    assert "I sent you a DM" in notice["content"] and notice["flags"] & EPHEMERAL
    dm = w.dm_channel(ALICE)
    await w.bot_says(dm, "Tell me in your own words")

    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "A patient math tutor for high school algebra homework")
    draft = await w.bot_says(dm, "Here is a draft", after=seen)
    assert "A Patient Math" in visible_text(draft)
    assert labels(draft) == ["Publish", "Preview", "Redraft", "Cancel", "Change a field…"]

    seen = len(w.bot_messages(dm))
    h = await w.press(ALICE, draft, "Change a field…", value="name")
    assert "What is its name?" in (await h.wait_original())["content"]
    await w.write(ALICE, dm, "Math Tutor")
    draft = await w.bot_says(dm, "Your draft", after=seen)
    assert "Name: Math Tutor" in visible_text(draft)

    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "preview")
    await w.bot_says(dm, "Preview: write to your draft", after=seen)
    await w.write(ALICE, dm, "What is 2x = 4?")
    preview = await w.bot_says(dm, "Answer 1: What is 2x = 4?", after=seen)
    assert preview["content"].startswith("*Preview of Math Tutor*")

    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "done")
    draft = await w.bot_says(dm, "Your draft", after=seen)
    h = await w.press(ALICE, draft, "Publish")
    published = await h.wait_original()
    assert "Published **Math Tutor** (version 1)" in published["content"]
    assert "Creator: Alice" in visible_text(published)


async def test_alice_builds_bob_uses(world: World, app: App, fake_llm: FakeOpenAI) -> None:
    w = world
    await build_tutor(w)
    system = fake_llm.requests[-1]["messages"][0]
    assert system["role"] == "system" and "patient math tutor" in system["content"].lower()

    h = await w.command(BOB, "search", query="algebra tutor")
    found = await h.wait_original()
    assert "Math Tutor" in visible_text(found) and "by Alice" in visible_text(found)
    assert found["flags"] & EPHEMERAL  # a search is for the one who searched

    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="How do I solve x + 3 = 5?")
    answer = await h.wait_original(lambda m: components(m))
    assert not answer["flags"] & EPHEMERAL
    assert answer["content"] == "**Math Tutor** · by Alice\nAnswer 1: How do I solve x + 3 = 5?"
    assert labels(answer) == ["Continue in thread", "Regenerate", "👍", "👎"]

    h = await w.press(BOB, answer, "Continue in thread")
    assert (await h.response())["type"] == 6  # acknowledged silently: the thread is the answer
    thread_id = int(answer["id"])  # a thread opened on a message shares its id
    opening = await w.bot_says(thread_id, "Continuing with **Math Tutor** here")
    await w.settled()  # the thread is bound to the conversation once the button's work is done
    thread = w.fake.channel(thread_id)
    assert thread is not None and thread["type"] == 11 and thread["parent_id"] == str(GENERAL)
    assert thread["name"] == "Math Tutor — How do I solve x + 3 = 5?"

    # Without the message-content intent Discord hides plain messages: the bot says how to go on
    await w.write(BOB, thread_id, "And 2x + 3 = 7?")
    hint = await w.bot_says(thread_id, "mention me", after=1)
    assert hint["id"] != opening["id"]
    await w.write(BOB, thread_id, f"<@{w.fake.application_id}> And 2x + 3 = 7?")
    second = await w.bot_says(thread_id, "Answer 2: And 2x + 3 = 7?")  # the thread carries the history
    assert "Continue in thread" not in labels(second)
    last = fake_llm.requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]

    h = await w.command(BOB, "rate", gpt="math-tutor", stars=5, review="Clear and kind")
    assert "You rated **Math Tutor** 5/5" in (await h.wait_original())["content"]
    h = await w.command(BOB, "info", gpt="Math Tutor")
    info = visible_text(await h.wait_original())
    assert "★ 5.0 (1)" in info and "Uses: 2" in info

    invocations = await rows(app, Invocation)
    assert [(i.status, i.is_creator, i.is_preview, i.platform) for i in invocations] == [("ok", False, False, "discord")] * 2
    identities = {i.account_id: i.external_id for i in await rows(app, Identity)}
    assert {identities[i.account_id] for i in invocations} == {str(BOB)}
    assert [r.stars for r in await rows(app, Rating)] == [5]
    assert not await rows(app, BuilderDraft)
    assert not w.fake.errors and not w.fake.unknown_calls
    assert w.client is not None and not w.client.persistent_views  # nothing kept in memory per message
    # only the events it reads: no typing, reactions or voice traffic from a busy server
    assert w.client.intents.value == discord.Intents(guilds=True, guild_messages=True, dm_messages=True).value
    assert all(c.status < 400 for c in w.fake.calls), [c for c in w.fake.calls if c.status >= 400]


async def test_with_message_content_intent_plain_messages_continue(offline_world: World, app: App) -> None:
    """With the privileged intent enabled (a setting), a plain message in a GPT thread goes on."""
    w = offline_world
    app.settings.discord_message_content = True
    client = await w.start()
    assert client.intents.message_content
    await build_tutor(w)
    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="What is x if x + 1 = 2?")
    answer = await h.wait_original(lambda m: components(m))
    await (await w.press(BOB, answer, "Continue in thread")).response()
    thread_id = int(answer["id"])
    await w.bot_says(thread_id, "Continuing with")
    await w.settled()
    await w.write(BOB, thread_id, "And if x + 2 = 4?")
    await w.bot_says(thread_id, "Answer 2: And if x + 2 = 4?")
    # a plain message in a channel is still not for the bot
    await w.write(BOB, GENERAL, "math-tutor: hello?")
    await w.write(BOB, GENERAL, f"<@{w.fake.application_id}> math-tutor: hello!")
    reply = await w.bot_says(GENERAL, "Answer 1: hello!")
    assert reply["message_reference"]["message_id"]  # it answers the message that asked
    assert not any("hello?" in m["content"] for m in w.bot_messages(GENERAL))
