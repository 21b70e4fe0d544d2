"""How replies reach people on Discord: in time whatever the LLM does, streamed and split at 2 000
characters, buttons that survive a restart, DMs (closed ones too), threads, modals, paging, no
pings, shards."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from sqlmodel import select

from bot import admission
from bot.adapters import discord_render as render
from bot.bootstrap import App, bootstrap
from bot.replies import Button
from store.models import BuilderDraft, Feedback
from tests.conftest import make_settings
from tests.discord_support import (
    ALICE,
    BOB,
    EPHEMERAL,
    GENERAL,
    GUILD,
    OWNER,
    World,
    components,
    labels,
    offline_world,
    seed_gpt,
    visible_text,
    world,
)
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["offline_world", "world"]


async def ask(w: World, user: int, prompt: str, gpt: str = "math-tutor") -> dict[str, Any]:
    """/gpt ask in #general; the finished answer (it has its buttons)."""
    h = await w.command(user, "ask", gpt=gpt, prompt=prompt)
    return await h.wait_original(lambda m: bool(components(m)), timeout=20)


async def test_a_button_works_after_a_restart(offline_world: World, app: App, database_url: str,
                                              fake_llm: FakeOpenAI) -> None:
    w = offline_world
    await w.start()
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    answer = await ask(w, BOB, "What is 3 + 4?")
    await w.stop()

    # a new process: a new client on a new App over the same database, nothing kept in memory
    second = await bootstrap(make_settings(database_url, fake_llm.base_url), migrate=True)
    try:
        await w.start(second)
        h = await w.press(BOB, answer, "👍")
        assert "Thanks for the feedback!" in await w.replies(h)
        assert h.original is not None and h.original["flags"] & EPHEMERAL
        async with second.db.reader() as session:
            assert [f.value for f in (await session.execute(select(Feedback))).scalars()] == [1]
        h = await w.press(BOB, answer, "Regenerate")
        regenerated = await h.wait_original(lambda m: bool(components(m)), timeout=20)
        assert "What is 3 + 4?" in regenerated["content"] and regenerated["id"] != answer["id"]
    finally:
        await w.stop()
        await second.aclose()


async def test_closed_dms_are_explained_where_the_user_typed(world: World, app: App) -> None:
    world.fake.close_dms_for.add(BOB)
    h = await world.command(BOB, "create")
    said = await world.replies(h)
    assert "I cannot send you a direct message" in said
    assert h.original is not None and h.original["flags"] & EPHEMERAL
    async with app.db.reader() as session:
        assert not list((await session.execute(select(BuilderDraft))).scalars())


async def test_a_slow_llm_never_makes_discord_give_up(offline_world: World, app: App, fake_llm: FakeOpenAI) -> None:
    """The model takes longer than Discord's 3 s: every interaction is still acknowledged in time
    (the fake Discord refuses a late acknowledgement with 10062, as Discord does)."""
    w = offline_world
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    fake_llm.latency = 3.5

    # acknowledging first, always: a public "thinking…" for /gpt ask, which becomes the answer
    await w.start(ack_grace=0)
    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="Slowly: 1 + 1?")
    assert (await h.response())["type"] == 5
    answer = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    assert "Answer 1: Slowly: 1 + 1?" in answer["content"] and not answer["flags"] & EPHEMERAL
    # an error answers only its reader: the public "thinking…" gives way to an ephemeral message
    h = await w.command(BOB, "ask", gpt="no-such-gpt", prompt="hi")
    assert (await h.response())["type"] == 5
    said = await w.replies(h)
    assert "No GPT called" in said and h.original is None
    assert h.followups[-1]["flags"] & EPHEMERAL
    await w.stop()

    # the default: a command that cannot open a form shows "thinking…" at once; a button is answered
    # at once if the core is quick, else acknowledged when ack_grace runs out
    await w.start()
    fake_llm.latency = 0
    dm = w.dm_channel(ALICE)
    await (await w.command(ALICE, "create", channel=dm)).response()
    await w.bot_says(dm, "Tell me in your own words")
    seen = len(w.bot_messages(dm))
    await w.write(ALICE, dm, "A tutor for chemistry homework")
    draft = await w.bot_says(dm, "Here is a draft", after=seen)
    fake_llm.latency = 3.5
    h = await w.press(ALICE, draft, "Redraft")  # the core waits 3.5 s for the model before replying
    assert (await h.response(timeout=10))["type"] == 6
    [redrafted] = await h.wait_followups(1, timeout=20)
    assert "Here is a draft" in visible_text(redrafted)
    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="Slowly again?")
    thinking = await h.response()
    assert thinking["type"] == 5 and not (thinking.get("data") or {}).get("flags", 0) & EPHEMERAL  # public, as the answer
    answer = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    assert "Answer 1: Slowly again?" in answer["content"] and not answer["flags"] & EPHEMERAL
    assert not [c for c in w.fake.calls if c.status >= 400], [c for c in w.fake.calls if c.status >= 400]


async def test_a_command_discord_gave_up_on_is_not_answered(world: World, app: App, fake_llm: FakeOpenAI) -> None:
    """Reached too late to be acknowledged (Discord has already told the person the app did not
    respond), a question is not put to the model, nor answered into the void."""
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    world.fake.interaction_deadline = 0.0
    h = await world.command(BOB, "ask", gpt="math-tutor", prompt="Too late?")
    await world.settled()
    assert h.callback is None and not h.messages and not fake_llm.requests
    world.fake.interaction_deadline = 3.0
    answer = await ask(world, BOB, "In time?")
    assert "Answer 1: In time?" in answer["content"]


async def test_long_answers_are_streamed_and_continue_past_2000_characters(
    offline_world: World, app: App, fake_llm: FakeOpenAI
) -> None:
    w = offline_world
    await seed_gpt(app, ALICE, "Math Tutor", "Math Tutor")
    words = [f"word{i}" for i in range(700)]
    text = " ".join(words)  # about 5 600 characters
    fake_llm.responder = lambda messages, model: text
    fake_llm.token_rate = 500
    interval = 0.25
    await w.start(edit_interval=interval)
    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="Count for me")
    await h.response()
    await w.settled(within=30)
    parts = h.messages
    assert len(parts) == 3 and all(len(p["content"]) <= 2000 for p in parts)
    assert " ".join(p["content"] for p in parts).split()[-700:] == words
    assert [bool(components(p)) for p in parts] == [False, False, True]  # the buttons come last

    # each message: posted, then edited at most once per interval, the last edit right at the end
    by_path: dict[str, list[Any]] = {}
    for call in h.calls:
        if call.route == "/interactions/{interaction_id}/{token}/callback":
            if call.json.get("type") != 5:  # "thinking…" is not the message: its first edit posts it
                by_path.setdefault("@original", []).append(call)
        elif call.method == "PATCH":
            by_path.setdefault(call.path.rsplit("/", 1)[-1], []).append(call)
        elif call.method == "POST" and call.response and "id" in call.response:
            by_path.setdefault(call.response["id"], []).append(call)
    edited = [calls for calls in by_path.values() if len(calls) > 2]
    assert edited, by_path
    for calls in by_path.values():
        for before, after in zip(calls[:-2], calls[1:-1], strict=True):
            assert after.timestamp - (before.responded_at or 0) >= interval * 0.95


async def test_an_answer_shows_with_its_first_words(offline_world: World, app: App, fake_llm: FakeOpenAI) -> None:
    """While Discord shows that an answer is coming (/gpt ask's "thinking…", "… is typing" in a DM
    or a thread), the answer appears as soon as its first words are there, with the GPT's name: not
    the name and "…" first, then the words an edit interval later."""
    w = offline_world
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    words = [f"word{i}" for i in range(30)]
    fake_llm.responder = lambda messages, model: " ".join(words)
    fake_llm.latency, fake_llm.token_rate = 0.3, 20  # 1.5 s of words after 0.3 s of thought
    await w.start(edit_interval=1.0)
    h = await w.command(BOB, "ask", gpt="math-tutor", prompt="Count slowly")
    assert (await h.response())["type"] == 5
    answer = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    edits = [call.json["content"] for call in h.calls if call.method == "PATCH"]
    assert edits[0].startswith("**Math Tutor**") and "word0" in edits[0] and "…" not in edits[0]
    assert answer["content"].split()[-30:] == words and 2 <= len(edits) <= 4  # then paced, one a second

    dm = w.dm_channel(BOB)
    await (await w.command(BOB, "use", channel=dm, gpt="math-tutor")).wait_original()
    seen = len(w.bot_messages(dm))
    await w.write(BOB, dm, "Count again")
    await w.bot_says(dm, "word29", after=seen, within=20)
    calls = [c for c in w.fake.calls if c.path in (f"/channels/{dm}/typing", f"/channels/{dm}/messages")
             and c.method == "POST"]
    typing, posted = calls[-2], calls[-1]
    assert typing.path.endswith("/typing")  # "… is typing", then the first words: no header and "…" between
    assert posted.json["content"].startswith("**Math Tutor**") and "word0" in posted.json["content"]


async def test_nobody_is_pinged(world: World, app: App, fake_llm: FakeOpenAI) -> None:
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    fake_llm.responder = lambda messages, model: f"@everyone @here <@{OWNER}> <@&{GUILD}> look!"
    answer = await ask(world, BOB, "Ping them all")
    assert "@everyone @here" in answer["content"]
    h = await world.command(BOB, "create")  # DM messages, with a card and buttons later
    await world.replies(h)
    sends = []
    for call in world.fake.calls:
        if call.route == "/interactions/{interaction_id}/{token}/callback" and call.json.get("type") in (4, 7):
            sends.append(call.json["data"])
        elif call.method in ("POST", "PATCH") and (
            call.route or "").startswith(("/webhooks/", "/channels/{channel_id}/messages")) and call.json:
            sends.append(call.json)
    assert len(sends) >= 4
    assert all(s.get("allowed_mentions") == {"parse": []} for s in sends), sends


async def test_a_form_opens_as_a_modal_and_comes_back_as_its_values(world: World, app: App) -> None:
    await seed_gpt(app, ALICE, "Alice", "Algebra Coach")
    assert world.client is not None
    channel = world.client.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    posted = await channel.send("Find a GPT", view=render.view([Button("Search", "search-form")]))
    message = world.fake.get_message(posted.id)
    assert message is not None
    h = await world.press(BOB, message, "Search")
    modal = (await h.response())["data"]
    assert modal["title"] == "Search the GPT store"
    h = await world.submit(BOB, modal, GENERAL, {"query": "algebra"}, message=message)
    found = await world.replies(h)
    assert "Search: algebra (page 1)" in found and "Algebra Coach" in found

    # acknowledged before the core answered (here: always, ack_grace=0), a modal cannot open any
    # more: the person gets a button that asks again, and a fresh press answers at once
    await world.stop()
    await world.start(ack_grace=0)
    h = await world.press(BOB, message, "Search")
    assert (await h.response())["type"] == 6
    [again] = await h.wait_followups(1)
    assert again["content"] == "Search the GPT store" and again["flags"] & EPHEMERAL
    assert components(again)[0]["custom_id"] == "search-form" and labels(again) == ["Open the form"]


async def test_paging_edits_the_same_message(world: World, app: App) -> None:
    for n in range(1, 8):
        await seed_gpt(app, ALICE, "Alice", f"Tutor {n}")
    h = await world.command(BOB, "search", query="tutor")
    first = await h.wait_original()
    assert "page 1" in visible_text(first) and labels(first) == ["Next ▶"]
    h2 = await world.press(BOB, first, "Next ▶")
    assert (await h2.response())["type"] == 7  # the listing is replaced, not repeated
    await world.settled()
    page = world.fake.get_message(int(first["id"]))
    assert page is not None and "page 2" in visible_text(page) and labels(page) == ["◀ Previous"]


async def test_a_discord_slow_to_answer_a_thinking_holds_no_one_else_back(
    world: World, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's "thinking…" goes out before other events' work starts (`Admission.urgent`), but
    Discord's answer to it is not waited for: while Discord sits on Bob's acknowledgement, Alice's
    DM is answered. The hold is made endless here, so only the request being written can end it."""
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 60.0)
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    world.fake.hold_callbacks = discord_answers = asyncio.Event()
    h = await world.command(BOB, "ask", gpt="math-tutor", prompt="Is Discord slow today?")
    await world.wait(lambda: world.fake.callbacks_held == 1)
    dm = world.dm_channel(ALICE)
    await world.write(ALICE, dm, "hello?")
    await world.bot_says(dm, "To talk to a GPT", within=5)
    assert h.callback is None  # Discord has still not taken Bob's acknowledgement
    discord_answers.set()
    answer = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    assert "Answer 1: Is Discord slow today?" in answer["content"]


async def test_a_dm_conversation(world: World, app: App) -> None:
    await seed_gpt(app, ALICE, "Alice", "Math Tutor", starters=("What are fractions?",))
    dm = world.dm_channel(BOB)
    await world.write(BOB, dm, "hello?")
    await world.bot_says(dm, "To talk to a GPT")
    h = await world.command(BOB, "use", channel=dm, gpt="math-tutor")
    chosen = await h.wait_original()
    assert "You are now talking to **Math Tutor**" in chosen["content"] and not chosen["flags"] & EPHEMERAL
    assert labels(chosen) == ["What are fractions?"]
    seen = len(world.bot_messages(dm))
    await world.write(BOB, dm, "What is 1 + 1?")
    await world.bot_says(dm, "Answer 1: What is 1 + 1?", after=seen)
    await world.write(BOB, dm, "And 2 + 2?")
    await world.bot_says(dm, "Answer 2: And 2 + 2?", after=seen)  # one at a time, in order
    h = await world.press(BOB, chosen, "What are fractions?")
    started = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    assert "Answer 1: What are fractions?" in started["content"]


async def test_hidden_thread_messages_get_one_hint(world: World, app: App) -> None:
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    answer = await ask(world, BOB, "Help?")
    await (await world.press(BOB, answer, "Continue in thread")).response()
    thread = int(answer["id"])
    await world.bot_says(thread, "Continuing with")
    await world.settled()  # the thread is bound to the conversation once the button's work is done
    await world.write(BOB, thread, "first hidden")
    await world.bot_says(thread, "mention me", after=1)
    await world.write(BOB, thread, "second hidden")
    await world.write(BOB, thread, f"<@{world.fake.application_id}> visible")
    await world.bot_says(thread, "Answer 2: visible")
    assert sum("mention me" in m["content"] for m in world.bot_messages(thread)) == 1
    h = await world.command(BOB, "ask", channel=thread, gpt="math-tutor", prompt="In the thread?")
    in_thread = await h.wait_original(lambda m: bool(components(m)), timeout=20)
    assert in_thread["channel_id"] == str(thread) and "Answer 1: In the thread?" in in_thread["content"]
    assert "Continue in thread" not in labels(in_thread)  # it is one already


async def test_an_outdated_command_is_explained(world: World) -> None:
    h = await world.command(BOB, "frobnicate")
    assert "Unknown command `/gpt frobnicate`" in await world.replies(h)


async def test_shards_split_across_processes(offline_world: World, app: App) -> None:
    w = offline_world
    other, other_channel = GUILD + (1 << 22), 900000000000000002  # guild ids: shard 0 and shard 1 of 2
    w.fake.add_guild(other, "Chess Club", owner_id=OWNER, channels=[{"id": other_channel, "name": "chess"}])
    await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    app.settings.discord_shard_count = 2
    client = await w.start(shards=2)  # one process, both shards
    assert sorted(client.shards) == [0, 1]
    for channel in (GENERAL, other_channel):
        h = await w.command(BOB, "info", channel=channel, gpt="math-tutor")
        assert "Creator: Alice" in await w.replies(h)
    await w.stop()

    app.settings.discord_shard_ids = [1]  # a second process runs shard 1 only, and leaves registering to shard 0's
    puts = len([c for c in w.fake.calls if c.method == "PUT"])
    from tests.discord_support import TOKEN, Adapter

    shard1 = Adapter(app, guild_ready_timeout=0.05)
    task = asyncio.create_task(shard1.start(TOKEN))
    try:
        await asyncio.wait_for(shard1.wait_until_ready(), 10)
        assert sorted(shard1.shards) == [1] and not shard1.sync_commands
        assert len([c for c in w.fake.calls if c.method == "PUT"]) == puts
        h = await w.command(BOB, "info", channel=other_channel, gpt="math-tutor")
        assert "Creator: Alice" in await w.replies(h)
        payload = w.fake.slash_command(guild_id=GUILD, channel_id=GENERAL, user_id=BOB, name="gpt", subcommand="help")
        assert await w.fake.send_dispatch("INTERACTION_CREATE", payload) == 0  # shard 0 is another process's
    finally:
        await shard1.close()
        await asyncio.wait_for(task, 10)


async def test_rendering_keeps_within_discord_limits() -> None:
    """(async: discord.py views need a running loop, as in the adapter)"""
    from bot.replies import Card, CardField, Option, Select

    assert render.split_text("") == [""]
    pieces = render.split_text(("word " * 1000).strip())
    assert all(len(p) <= 2000 for p in pieces) and " ".join(pieces).split() == ["word"] * 1000
    assert render.split_text("x" * 4500) == ["x" * 2000, "x" * 2000, "x" * 500]
    card = Card("T" * 300, "D" * 5000, tuple(CardField(f"f{i}", "v" * 2000) for i in range(30)), "F" * 3000)
    embed = render.embed(card).to_dict()
    size = len(embed["title"]) + len(embed["description"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    size += len(embed.get("footer", {}).get("text", ""))
    assert size <= 6000 and len(embed["title"]) <= 256 and all(len(f["value"]) <= 1024 for f in embed["fields"])
    buttons = [Button(f"b{i}", f"a:{i}") for i in range(30)]
    view = render.view([*buttons, Select("s", "pick", tuple(Option(str(i), str(i)) for i in range(40)))])
    assert view is not None and len(view.to_components()) == 5 and view.is_finished()
    assert render.view([Button("x", "y" * 101)]) is None
    assert render.thread_name("a\nb " + "c" * 200).startswith("a b c") and len(render.thread_name("c" * 200)) == 100
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": "q", "value": "v"}]},
            {"type": 18, "component": {"type": 4, "custom_id": "r", "value": "w"}}]
    assert render.form_values(rows) == {"q": "v", "r": "w"}


async def test_started_and_stopped_as_gptstore_run_does(offline_world: World, app: App) -> None:
    """`bot.adapters.discord.start(app)` (what `gptstore run` calls) with the production client class."""
    from pydantic import SecretStr

    from bot.adapters import discord as adapter
    from tests.discord_support import TOKEN

    app.settings.discord_token = SecretStr("not-the-token")
    try:
        await adapter.start(app)
        raise AssertionError("a refused token must stop the start")
    except RuntimeError as exc:
        assert "Discord refused GPTSTORE_DISCORD_TOKEN" in str(exc)
    app.settings.discord_token = SecretStr(TOKEN)
    close = await adapter.start(app)
    try:
        await offline_world.fake.wait_ready()
        await seed_gpt(app, ALICE, "Alice", "Math Tutor")
        h = await offline_world.command(BOB, "info", gpt="math-tutor")
        assert "Creator: Alice" in await offline_world.replies(h)
    finally:
        await close()
    assert not offline_world.fake._sessions or all(s.ws.closed for s in offline_world.fake._sessions)
