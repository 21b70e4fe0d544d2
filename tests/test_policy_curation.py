"""`/gpt-admin` through the console: for each rule, what a member (bob), an admin (carol), the
creator (alice) and a stranger on another server (dave) each get. alice publishes Math Tutor and
Poem Bot first."""

from __future__ import annotations

import asyncio

from bot.bootstrap import App
from bot.events import Action, Actor, Command, HomeOpen
from store.models import Invocation
from store.policy import AuditEntry, WorkspacePolicy
from tests.conftest import Terminal
from tests.policy_helpers import OtherServer, autocomplete, rows, tutor_and_poem


async def test_only_admins_run_gpt_admin(app: App, terminal: Terminal) -> None:
    await tutor_and_poem(terminal)
    out = await terminal.run(":as bob", ":in #general", "/gpt-admin block math-tutor", "/gpt-admin policy")
    assert out.count("Only this server's admins can use") == 2
    out = await terminal.run(":as carol", ":admin on", ":dm", "/gpt-admin policy")
    assert "Run `/gpt-admin` in your server" in out


async def test_a_blocked_gpt_is_reached_by_no_path(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as bob", ":in #general", "/gpt ask math-tutor first", ":press Continue in thread")
    await t.run(":in #general", "/gpt ask poem-bot a cat", ":press Continue in thread")  # t2
    await t.run(":in #general", "/gpt ask math-tutor again")  # its buttons stay the last ones
    out = await t.run(":as carol", ":admin on", "/gpt-admin block math-tutor")
    assert "“Math Tutor” is blocked here" in out
    before = len(await rows(app, Invocation))

    member = "“Math Tutor” is blocked in this server. This server's admins decide this with `/gpt-admin`. Last change by Carol"
    out = await t.run(":as bob", ":press Regenerate")  # a button from before the block
    assert member in out
    out = await t.run(":in #general", "/gpt search tutor", "/gpt browse", "/gpt top", "/gpt new")
    assert "Math Tutor" not in out and "Poem Bot" in out
    for line in ("/gpt ask math-tutor hi", "/gpt info math-tutor", "@gptstore math-tutor: hi", "/gpt rate math-tutor 5"):
        assert member in await t.run(line), line
    assert member in await t.run(":in t1", "one more question")  # the open thread stops too
    assert member in await t.run(":in t2", "@Math Tutor take over")  # no handoff to it
    assert "tutor" not in str(await autocomplete(app, "bob", "tut")).lower()
    assert "Did you mean" not in await t.run(":in #general", "/gpt ask math-tutr hi")
    assert len(await rows(app, Invocation)) == before  # nothing reached the model

    out = await t.run(":as carol", ":admin on", ":in #general", "/gpt ask math-tutor hi", "/gpt info math-tutor")
    assert "You can lift the block with `/gpt-admin unblock math-tutor`." in out
    assert "In this server: blocked" in out  # an admin still sees the card
    assert [c.value for c in await autocomplete(app, "carol", "tut", group="gpt-admin", name="unblock", admin=True)] == ["math-tutor"]

    out = await t.run(":as alice", ":in #general", "/gpt ask math-tutor hi", "/gpt mine", "/gpt info math-tutor")
    assert member in out and "Math Tutor (`math-tutor`)" in out and "Creator: Alice" in out

    dave = OtherServer(app)
    out = await dave.run(":as dave", ":in #general", "/gpt search tutor", "/gpt ask math-tutor hi")
    assert "Math Tutor" in out and "Answer 1: hi" in out  # another server's rules are its own

    await t.run(":as carol", ":admin on", "/gpt-admin unblock math-tutor")
    assert "Answer 1: hi" in await t.run(":as bob", ":in #general", "/gpt ask math-tutor hi")


async def test_allowlist_mode(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    out = await t.run(":as carol", ":admin on", "/gpt-admin mode allowlist", "/gpt-admin allow poem-bot")
    assert "Allowlist mode" in out and "“Poem Bot” is allowed here." in out
    out = await t.run(":as bob", ":in #general", "/gpt browse", "/gpt search tutor", "/gpt ask poem-bot hi")
    assert "Math Tutor" not in out and "Poem Bot" in out and "Answer 1: hi" in out
    refusal = "This server only allows GPTs its admins picked, and “Math Tutor” is not one of them."
    out = await t.run("/gpt ask math-tutor hi")
    assert refusal in out and "This server's admins decide this" in out
    out = await t.run(":as carol", ":admin on", "/gpt ask math-tutor hi")
    assert refusal in out and "You can allow it with `/gpt-admin allow math-tutor`." in out
    assert refusal in await t.run(":as alice", ":in #general", "/gpt ask math-tutor hi")  # its creator too, here
    assert "Answer 1: hi" in await OtherServer(app).run(":as dave", ":in #general", "/gpt ask math-tutor hi")
    await t.run(":as carol", ":admin on", "/gpt-admin mode open")
    assert "Answer 1: hi" in await t.run(":as bob", ":in #general", "/gpt ask math-tutor hi")


async def test_featured_gpts_come_first(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as bob", ":in #general", "/gpt ask math-tutor a", ":as erin", "/gpt ask math-tutor b")
    out = await t.run(":as bob", "/gpt browse")
    assert out.index("Math Tutor") < out.index("Poem Bot")  # the used one first
    await t.run(":as carol", ":admin on", "/gpt-admin feature poem-bot")
    out = await t.run(":as bob", "/gpt browse")
    assert out.index("Poem Bot") < out.index("Math Tutor") and "⭐ Featured by this server's admins" in out
    out = await t.run("/gpt top")
    assert out.index("Poem Bot") < out.index("Math Tutor")
    home_out = await _home(t)
    assert "Featured here" in home_out and home_out.index("Poem Bot") < home_out.index("Math Tutor")
    out = await OtherServer(app).run(":as dave", ":in #general", "/gpt browse")
    assert out.index("Math Tutor") < out.index("Poem Bot") and "⭐" not in out


async def _home(t: Terminal) -> str:
    t.screen.export_text(clear=True)
    await t.adapter.deliver(HomeOpen(t.adapter._actor(), t.adapter._place(), ""))
    return t.screen.export_text(clear=True)


async def test_channels_where_gpts_answer(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as bob", ":in #general", "/gpt ask poem-bot a", ":press Continue in thread")
    out = await t.run(":as carol", ":admin on", ":in #general", "/gpt-admin channels #bots, #help")
    assert "GPTs answer in: #bots, #help." in out
    refusal = "GPTs do not answer in this channel. They answer in: #bots, #help."
    out = await t.run(":as bob", ":in #general", "/gpt ask poem-bot hi")
    assert refusal in out and "This server's admins decide this" in out and "Last change by Carol" in out
    assert refusal in await t.run(":in t1", "and a dog?")
    assert "Poem Bot" in await t.run(":in #general", "/gpt search poem")  # finding is fine, answering is not
    assert "Answer 1: hi" in await t.run(":in #bots", "/gpt ask poem-bot hi")
    assert "Answer 1: hi" in await t.run(":dm", "/gpt use poem-bot", "hi")  # DMs are no channel of the server
    out = await t.run(":as carol", ":admin on", ":in #general", "/gpt ask poem-bot hi")
    assert "You can change this with `/gpt-admin channels`." in out
    assert refusal in await t.run(":as alice", ":in #general", "/gpt ask poem-bot hi")
    assert "Answer 1: hi" in await OtherServer(app).run(":as dave", ":in #general", "/gpt ask poem-bot hi")
    out = await t.run(":as carol", ":admin on", "/gpt-admin channels", "/gpt-admin channels all")
    assert "GPTs answer in: #bots, #help." in out and "GPTs answer in: every channel." in out
    assert "Answer 2: and a dog?" in await t.run(":as bob", ":in t1", "and a dog?")


async def test_a_channels_default_gpt_answers_mentions(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    out = await t.run(":as bob", ":in #help", "@gptstore how do I factor x^2-1?")
    assert "To talk to a GPT" in out  # no default yet: the hint
    out = await t.run(":as carol", ":admin on", ":in #help", "/gpt-admin channel-gpt math-tutor")
    assert "Mentioning me in #help now talks to “Math Tutor”." in out
    out = await t.run(":as bob", ":in #help", "@gptstore how do I factor x^2-1?")
    assert "**Math Tutor** · by Alice" in out and "Answer 1: how do I factor x^2-1?" in out
    assert "**Poem Bot**" in await t.run("@gptstore poem-bot: a cat")  # naming another still works
    assert "Answer 1: Note: this" in await t.run("@gptstore Note: this")  # not a GPT name: the default
    assert "To talk to a GPT" in await t.run(":in #general", "@gptstore how do I factor?")
    await t.run(":as carol", ":admin on", ":in #help", "/gpt-admin block math-tutor")
    assert "“Math Tutor” is blocked in this server." in await t.run(":as bob", ":in #help", "@gptstore and now?")
    out = await t.run(":as carol", ":admin on", ":in #help", "/gpt-admin channel-gpt none", "/gpt-admin policy")
    assert "#help has no default GPT any more." in out and "Channel default GPTs: —" in out


async def test_review_and_reapproval_after_an_edit(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as carol", ":admin on", "/gpt-admin review on")
    out = await t.run(":as bob", ":in #general", "/gpt search tutor", "/gpt ask math-tutor hi")
    assert "No GPT matches" in out and "“Math Tutor” is waiting for this server's admins to approve it." in out
    out = await t.run(":as alice", ":in #general", "/gpt ask math-tutor hi")
    assert "waiting for this server's admins" in out  # its creator waits too, here
    out = await t.run(":as carol", ":admin on", "/gpt ask math-tutor let me try", "/gpt-admin policy")
    assert "Answer 1: let me try" in out and "Members are waiting for: Math Tutor" in out
    out = await t.run("/gpt-admin approve math-tutor")
    assert "Review “Math Tutor” (version 1)" in out and "Private to its creator" in out
    assert "Quillfeather" not in out  # a first review shows no instructions
    t.screen.export_text(clear=True)  # bob presses carol's button (a replayed or forged action id)
    await t.adapter.deliver(Action(Actor("console", "bob", "Bob"), t.adapter._place(), "x1", _approve_id(t)))
    assert "Only this server's admins can use `/gpt-admin approve`." in t.screen.export_text(clear=True)
    out = await t.run(":press Approve version 1")
    assert "Approved version 1 of “Math Tutor”: members can use it here." in out
    out = await t.run(":as bob", ":in #general", "/gpt ask math-tutor hi", ":press Continue in thread")
    assert "Answer 1: hi" in out

    await t.run(":as alice", ":dm", "/gpt edit math-tutor", "change instructions",
                "You are a strict algebra tutor called Quillfeather. Only give hints.", "publish")
    out = await t.run(":as bob", ":in #general", "/gpt ask math-tutor hi")
    assert "“Math Tutor” changed since this server's admins approved it, and waits for their approval again." in out
    assert "Answer 2: go on" in await t.run(":in t1", "go on")  # the approved version 1 goes on in its thread
    out = await t.run(":as carol", ":admin on", "/gpt-admin approve math-tutor")
    assert "version 1 (approved) → version 2" in out
    assert "[-1 word(s) removed-] {+strict+}" in out and "{+Only+}" in out and "{+hints.+}" in out
    assert "Quillfeather" not in out and "explain each step" not in out  # unchanged and removed words stay private
    await t.run(":press Approve version 2")
    assert "Answer 1: hi" in await t.run(":as bob", ":in #general", "/gpt ask math-tutor hi")
    assert "Answer 1: hi" in await OtherServer(app).run(":as dave", ":in #general", "/gpt ask math-tutor hi")


def _approve_id(t: Terminal) -> str:
    return next(c.action_id for c in t.adapter.state.controls if c.action_id.startswith("gpta-approve:"))


async def test_daily_quotas(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    out = await t.run(":as carol", ":admin on", "/gpt-admin quota member 2", "/gpt-admin quota server 3")
    assert "Daily limit for each member: 2 questions" in out and "Daily limit for the whole server: 3 questions" in out
    out = await t.run(":as bob", ":in #general", "/gpt ask poem-bot 1", "/gpt ask poem-bot 2", "/gpt ask poem-bot 3")
    assert out.count("Answer 1:") == 2
    assert "You reached this server's daily limit of 2 questions. It resets at midnight UTC." in out
    assert "This server's admins decide this with `/gpt-admin`. Last change by Carol" in out
    out = await t.run(":as carol", ":admin on", "/gpt ask poem-bot 4", "/gpt ask poem-bot 5")
    assert out.count("Answer 1:") == 1
    assert "This server reached its daily limit of 3 questions." in out
    assert "You can change it with `/gpt-admin quota server <number>`." in out
    assert "3 used today" in await t.run("/gpt-admin policy")
    assert "Answer 1: 6" in await OtherServer(app).run(":as dave", ":in #general", "/gpt ask poem-bot 6")
    await t.run("/gpt-admin quota member 0", "/gpt-admin quota server 0")
    assert "Answer 1: 7" in await t.run(":as bob", ":in #general", "/gpt ask poem-bot 7")


async def test_policy_and_log_say_who_changed_what(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as carol", ":admin on", ":in #general", "/gpt-admin mode allowlist", "/gpt-admin allow math-tutor",
                "/gpt-admin block poem-bot", "/gpt-admin review on", ":as frank", ":admin on",
                "/gpt-admin feature math-tutor", "/gpt-admin quota member 5")
    out = await t.run("/gpt-admin policy")
    for text in ("Mode: allowlist", "Review: on", "5 per member", "Allowed: Math Tutor (`math-tutor`)",
                 "Blocked: Poem Bot (`poem-bot`)", "Featured: Math Tutor (`math-tutor`)", "Policy version 3"):
        assert text in out, text
    out = await t.run("/gpt-admin log")
    assert out.index("**Frank** quota") < out.index("**Carol** block poem-bot") < out.index("**Carol** mode")
    entries = await rows(app, AuditEntry)
    assert [(e.actor_name, e.action) for e in entries][:2] == [("Carol", "mode"), ("Carol", "allow")]


async def test_two_admins_at_once_lose_no_update(app: App, terminal: Terminal) -> None:
    t = terminal
    await tutor_and_poem(t)
    await t.run(":as carol", ":admin on", ":in #general")  # makes the workspace known
    actor, place = t.adapter._actor(), t.adapter._place()
    changes = [("mode", {"mode": "allowlist"}), ("quota", {"scope": "member", "limit": 4}),
               ("review", {"state": "on"}), ("allow", {"gpt": "math-tutor"}), ("feature", {"gpt": "poem-bot"}),
               ("quota", {"scope": "server", "limit": 9})]
    sink = _Sink()
    await asyncio.gather(*(
        app.core.handle(Command(actor, place, f"race-{i}", "gpt-admin", name, options), sink)
        for i, (name, options) in enumerate(changes)
    ))
    assert not [text for text in sink.texts if "wrong" in text]
    [policy] = await rows(app, WorkspacePolicy)
    assert (policy.mode, policy.member_daily_quota, policy.workspace_daily_quota, policy.review_required) == (
        "allowlist", 4, 9, True)
    assert policy.version == 4
    out = await t.run("/gpt-admin policy")
    assert "Allowed: Math Tutor (`math-tutor`), Poem Bot (`poem-bot`)" in out and "Featured: Poem Bot" in out


class _Sink:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, reply):  # type: ignore[no-untyped-def]
        from bot.replies import Sent

        self.texts.append(reply.text)
        return Sent("m", "c", None)
