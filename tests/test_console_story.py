"""The core issue's story, end to end through the console: alice builds and publishes a GPT in a
DM, bob finds it, asks it in #general, continues in the thread and rates it; the invocations
table holds bob's uses and not alice's previews."""

from __future__ import annotations

from sqlmodel import select

from bot.bootstrap import App
from store.models import BuilderDraft, Gpt, GptVersion, Invocation, Rating, Turn
from tests.conftest import Terminal
from tests.fakes.openai_server import FakeOpenAI


async def rows(app: App, model):  # type: ignore[no-untyped-def]
    async with app.db.reader() as session:
        return list((await session.execute(select(model))).scalars())


async def build_tutor(t: Terminal) -> str:
    """alice builds 'Math Tutor' with the LLM's drafting help, previews it and publishes."""
    out = await t.run(":as alice", "/gpt create")
    assert "(DM to alice)" in out and "Tell me in your own words" in out
    out = await t.run(":dm", "A patient math tutor for high school algebra homework")
    assert "Here is a draft" in out and "A Patient Math" in out
    out = await t.run("change name")
    assert "What is its name?" in out
    out = await t.run("Math Tutor")
    assert "Your draft" in out and "Math Tutor" in out
    out = await t.run("preview", "What is 2x = 4?")
    assert "Answer 1: What is 2x = 4?" in out
    out = await t.run("done", "publish")
    assert "Published **Math Tutor** (version 1)" in out
    return out


async def test_alice_builds_bob_uses(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    t = terminal
    await build_tutor(t)
    system = fake_llm.requests[-1]["messages"][0]
    assert system["role"] == "system" and "patient math tutor" in system["content"].lower()

    out = await t.run(":as bob", ":in #general", "/gpt search algebra tutor")
    assert "Math Tutor" in out and "by Alice" in out

    out = await t.run("/gpt ask math-tutor How do I solve x + 3 = 5?")
    assert "**Math Tutor** · by Alice" in out
    assert "Answer 1: How do I solve x + 3 = 5?" in out
    assert "Continue in thread" in out

    out = await t.run(":press Continue in thread")
    assert "(new thread t1: Math Tutor — How do I solve x + 3 = 5?)" in out
    out = await t.run(":in t1", "And 2x + 3 = 7?")
    assert "Answer 2: And 2x + 3 = 7?" in out  # the thread carries the history
    assert fake_llm.requests[-1]["max_tokens"] == 1000  # answers are bounded (GPTSTORE_LLM_MAX_TOKENS)
    last = fake_llm.requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]

    out = await t.run("/gpt rate math-tutor 5 Clear and kind")
    assert "You rated **Math Tutor** 5/5" in out
    out = await t.run("/gpt info Math Tutor")
    assert "★ 5.0 (1)" in out and "Uses: 2" in out

    invocations = await rows(app, Invocation)
    assert [(i.status, i.is_creator, i.is_preview) for i in invocations] == [("ok", False, False)] * 2
    bob_ids = {i.account_id for i in invocations}
    assert len(bob_ids) == 1
    assert [r.stars for r in await rows(app, Rating)] == [5]
    assert not await rows(app, BuilderDraft)


async def test_builder_resumes_after_restart(database_url: str, fake_llm: FakeOpenAI) -> None:
    """A restart in the middle of the DM builder resumes where it was; field by field without LLM."""
    from bot.bootstrap import bootstrap
    from tests.conftest import make_settings

    first = await bootstrap(make_settings(database_url, None), migrate=True)
    t = Terminal(first)
    out = await t.run(":as carol", ":dm", "/gpt create", "A bot that writes haiku about cats")
    assert "What is its name?" in out  # no LLM: field by field
    await t.run("Cat Haiku", "Writes a haiku about your cat.")
    await first.aclose()

    second = await bootstrap(make_settings(database_url, None), migrate=True)
    t2 = Terminal(second)
    out = await t2.run(":as carol", ":dm", "You write one haiku (5-7-5) about the cat the user describes.")
    assert "conversation starters" in out
    out = await t2.run("skip", "6", "gpt-4o", "public", "publish")
    assert "Published **Cat Haiku** (version 1)" in out
    gpts = await rows(second, Gpt)
    assert [(g.name, g.category, g.visibility) for g in gpts] == [("Cat Haiku", "Lifestyle", "public")]
    out = await t2.run("/gpt ask cat-haiku a fat orange cat")
    assert "No language model is configured yet" in out
    invocations = await rows(second, Invocation)
    assert [(i.status, i.error_code) for i in invocations] == [("error", "not_configured")]
    await second.aclose()


async def test_duplicate_delivery_is_one_answer(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    await build_tutor(terminal)
    before = len(fake_llm.requests)
    out = await terminal.run(":as bob", ":in #general", "/gpt ask math-tutor hi", ":repeat")
    assert out.count("Answer 1: hi") == 1
    assert len(fake_llm.requests) == before + 1
    assert len([i for i in await rows(app, Invocation)]) == 1


async def test_bad_input_is_refused_politely(app: App, terminal: Terminal) -> None:
    out = await terminal.run(":dm", "/gpt create", "fields", "ab")
    assert "A name must be 3 to 40 characters; yours has 2." in out
    out = await terminal.run("x" * 41)
    assert "yours has 41" in out
    out = await terminal.run("Good Name", "d" * 301)
    assert "A description must be 1 to 300 characters; yours has 301." in out
    out = await terminal.run("/gpt ask nothing-here hello")
    assert "No GPT called “nothing-here”" in out
    out = await terminal.run("/gpt rate")
    assert "Missing gpt" in out
    out = await terminal.run("/gpt frobnicate")
    assert "Unknown command" in out
    assert "Traceback" not in out


async def test_private_and_unlisted_visibility(app: App, terminal: Terminal) -> None:
    t = terminal
    await t.run(":as dave", ":dm", "/gpt create", "fields", "Secret Helper", "Helps with secrets.",
                "You help.", "skip", "1", "1", "private", "publish")
    await t.run("/gpt create", "fields", "Hidden Gem", "An unlisted helper.", "You help.", "skip", "1", "1",
                "unlisted", "publish")
    out = await t.run(":as erin", ":in #general", "/gpt search helper")
    assert "Secret Helper" not in out and "Hidden Gem" not in out
    out = await t.run("/gpt info secret-helper")
    assert "No GPT called" in out
    out = await t.run("/gpt info hidden-gem")
    assert "Hidden Gem" in out and "unlisted" in out
    out = await t.run(":as dave", "/gpt search helper")
    assert "Secret Helper" in out


async def test_turns_are_pinned_to_version(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    t = terminal
    await build_tutor(t)
    await t.run(":as bob", ":in #general", "/gpt ask math-tutor first", ":press Continue in thread")
    await t.run(":as alice", ":dm", "/gpt edit math-tutor", "change instructions",
                "You are a strict tutor who only gives hints.", "publish")
    versions = await rows(app, GptVersion)
    assert [v.number for v in versions] == [1, 2]
    await t.run(":as bob", ":in t1", "second")
    assert "patient math tutor" in fake_llm.requests[-1]["messages"][0]["content"].lower()
    await t.run(":in #general", "/gpt ask math-tutor third")
    assert "strict tutor" in fake_llm.requests[-1]["messages"][0]["content"]
    assert len(await rows(app, Turn)) == 6


async def test_mention_hands_the_thread_to_another_gpt(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    t = terminal
    await build_tutor(t)
    await t.run("/gpt create", "fields", "Story Teller", "Tells stories.", "You tell short stories.", "skip", "1",
                "1", "public", "publish")
    await t.run(":as bob", ":in #general", "/gpt ask math-tutor what is 3 squared?", ":press Continue in thread")
    out = await t.run(":in t1", "@Story Teller: make it a story")
    assert "Handing this conversation to **Story Teller**" in out
    assert "**Story Teller** · by Alice" in out
    sent = fake_llm.requests[-1]["messages"]
    assert "short stories" in sent[0]["content"]
    assert [m["content"] for m in sent[1:]] == ["what is 3 squared?", "Answer 1: what is 3 squared?", "make it a story"]
    out = await t.run("and a sequel")
    assert "**Story Teller** · by Alice" in out  # the thread now follows the new GPT


async def test_regenerate_asks_the_last_question_once(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    await build_tutor(terminal)
    out = await terminal.run(":as bob", ":in #general", "/gpt ask math-tutor what is pi?", ":press Regenerate")
    assert out.count("Answer 1: what is pi?") == 2
    sent = fake_llm.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"] and sent[1]["content"] == "what is pi?"


async def test_drafting_falls_back_to_one_question_per_field(app: App, terminal: Terminal, fake_llm: FakeOpenAI) -> None:
    """A small local model that cannot write JSON still drafts: one plain question per field."""
    def small_model(messages, model):  # type: ignore[no-untyped-def]
        asked = messages[-1]["content"]
        if messages[0]["content"].startswith("[[draft]]"):
            return "Sure! Here is your assistant."  # not JSON
        if asked.startswith("Reply with only a short"):
            return '"Garden Buddy"\nIt helps with plants.'
        if asked.startswith("Reply with only one sentence"):
            return "Answers questions about growing vegetables at home."
        return "You are Garden Buddy. You help people grow vegetables at home."

    fake_llm.responder = small_model
    out = await terminal.run(":dm", "/gpt create", "Help me grow tomatoes and beans on a balcony")
    assert "Here is a draft" in out and "Garden Buddy" in out
    assert "You are Garden Buddy." in out


async def test_double_clicks_are_harmless(app: App, terminal: Terminal) -> None:
    from store.models import Feedback

    await build_tutor(terminal)
    await terminal.run(":as bob", ":in #general", "/gpt ask math-tutor hello")
    out = await terminal.run(":press 👍")
    assert "Thanks for the feedback!" in out
    out = await terminal.run(":repeat", ":press 👍")  # the same delivery again, then a second click
    assert "You already gave feedback on this answer." in out
    assert len(await rows(app, Feedback)) == 1
    async with app.db.reader() as session:
        assert (await session.execute(select(Gpt.thumbs_up))).scalar_one() == 1
    await terminal.run(":press Continue in thread")
    out = await terminal.run(":press Continue in thread")
    assert "This conversation already has a thread." in out
