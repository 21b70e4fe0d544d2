"""The core issue's story through the fake Slack and the real Bolt app: alice builds and publishes a GPT
in the app's Messages tab, bob finds it, asks it in #general, goes on in the answer's thread and rates
it; the invocations table holds bob's two uses and none of alice's previews."""

from __future__ import annotations

from store.models import BuilderDraft, Invocation, Rating
from tests.slack_env import ALICE, BOB, GENERAL, SlackEnv, rendered


async def build_tutor(env: SlackEnv) -> None:
    """alice builds 'Math Tutor' in her DM with the bot, previews it and publishes with the button."""
    dm = env.fake.dm_channel(ALICE)
    await env.command("create", user=ALICE)
    assert any("I sent you a DM" in t for t in env.whispers(ALICE, GENERAL))
    assert any("Tell me in your own words" in t for t in env.texts(dm))

    await env.dm(ALICE, "A patient math tutor for high school algebra homework")
    review = env.last(dm)
    assert "Here is a draft" in rendered(review) and "A Patient Math" in rendered(review)

    await env.dm(ALICE, "change name")
    assert "What is its name?" in rendered(env.last(dm))
    await env.dm(ALICE, "Math Tutor")
    assert "Math Tutor" in rendered(env.last(dm))

    await env.dm(ALICE, "preview")
    await env.dm(ALICE, "What is 2x = 4?")
    preview = env.last(dm)
    assert "Answer 1: What is 2x = 4?" in rendered(preview) and preview["edited"]  # written by chat.update
    await env.dm(ALICE, "done")
    await env.press(env.last(dm), "Publish", user=ALICE)
    assert "Published *Math Tutor* (version 1)" in rendered(env.last(dm))


async def test_alice_builds_bob_uses_through_slack(slack_env: SlackEnv) -> None:
    env = slack_env
    await build_tutor(env)
    system = env.llm.requests[-1]["messages"][0]
    assert system["role"] == "system" and "patient math tutor" in system["content"].lower()

    await env.command("search algebra tutor")
    (found,) = [e for e in env.fake.ephemerals(GENERAL, BOB) if "Search" in rendered(e)]
    assert "Math Tutor" in rendered(found) and "by Alice" in rendered(found)

    await env.command("ask math-tutor How do I solve x + 3 = 5?")
    root, answer = env.fake.messages(GENERAL)[-2:]
    assert "*Math Tutor* · by Alice" in rendered(root) and "How do I solve x + 3 = 5?" in rendered(root)
    assert answer["thread_ts"] == root["ts"]  # Slack answers in a thread
    assert answer["text"] == "Answer 1: How do I solve x + 3 = 5?"
    assert "Continue in thread" not in rendered(answer)  # already threaded
    assert "Regenerate" in rendered(answer)

    await env.event(env.slack.message_in_thread(user_id=BOB, channel_id=GENERAL, thread_ts=root["ts"],
                                                text="And 2x + 3 = 7?"))
    replies = env.fake.messages(GENERAL, thread_ts=root["ts"])
    assert replies[-1]["text"].endswith("Answer 2: And 2x + 3 = 7?")  # the thread carries the history
    assert [m["role"] for m in env.llm.requests[-1]["messages"]] == ["system", "user", "assistant", "user"]

    await env.command("rate math-tutor 5 Clear and kind")
    assert "You rated *Math Tutor* 5/5" in env.whispers(BOB, GENERAL)[-1]
    await env.command("info Math Tutor")
    card = rendered(env.last(GENERAL))
    assert "★ 5.0 (1)" in card and "*Uses*\n2" in card

    invocations = await env.rows(Invocation)
    assert [(i.status, i.is_creator, i.is_preview, i.platform) for i in invocations] == [("ok", False, False, "slack")] * 2
    assert len({i.account_id for i in invocations}) == 1
    assert [r.stars for r in await env.rows(Rating)] == [5]
    assert not await env.rows(BuilderDraft)
