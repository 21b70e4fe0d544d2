"""Bad input, fuzzed through the core's event API and the text-command parser: any Unicode,
huge and empty strings, control characters, mention and markdown injection, unknown options,
wrong types. Never a crash, never a traceback shown; always a reply a person can read."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands
from bot.bootstrap import App
from bot.catalog import COMMANDS
from bot.errors import UserError
from bot.events import Action, Actor, Command, Message, Place
from bot.replies import Reply, Sent
from bot.textcommand import parse

commands.load()
_ids = itertools.count()
NASTY = st.sampled_from([
    "", " ", "\x00", "\u202e", "@everyone", "@here", "<@123>", "<!channel>", "<@&9>", "**bold**", "`", "```",
    "x" * 5000, "名前", "🧪" * 50, "\n\n", "' OR 1=1 --", '"unterminated', "NaN", "-1", "99999999999999999999",
])
TEXT = st.one_of(st.text(max_size=300), NASTY, st.builds(lambda a, b: a + b, NASTY, st.text(max_size=40)))


class Recorder:
    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def send(self, reply: Reply) -> Sent:
        self.replies.append(reply)
        if reply.stream is not None:
            async for _ in reply.stream:
                pass
        return Sent(message_id=f"m{next(_ids)}", channel_id="c", thread_id="t")


def visible(recorder: Recorder) -> str:
    parts = []
    for reply in recorder.replies:
        parts.append(reply.text)
        for card in (reply.card, *reply.cards):
            if card:
                parts += [card.title, card.description, *(f.value for f in card.fields)]
    return "\n".join(parts)


def place(dm: bool) -> Place:
    return Place(None if dm else "fuzz", "dm-fuzz" if dm else "general", is_dm=dm, workspace_name="Fuzz")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(n for g, n in COMMANDS if g == "gpt")), values=st.lists(TEXT, max_size=4),
       dm=st.booleans(), admin=st.booleans())
async def test_commands_never_crash(app: App, name: str, values: list[str], dm: bool, admin: bool) -> None:
    spec = COMMANDS[("gpt", name)]
    options = {option.name: value for option, value in zip(spec.options, values, strict=False)}
    options["unknown-option"] = "zzz"
    out = Recorder()
    actor = Actor("fuzz", "fuzzer", "Fuzzer <@1>", is_admin=admin, locale="fr" if dm else "en")
    await app.core.handle(Command(actor, place(dm), f"e{next(_ids)}", "gpt", name, options), out)
    text = visible(out)
    assert out.replies, "every command gets a reply"
    assert "Traceback" not in text and "incident" not in text, text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, dm=st.booleans(), mentioned=st.booleans())
async def test_messages_never_crash(app: App, text: str, dm: bool, mentioned: bool) -> None:
    out = Recorder()
    actor = Actor("fuzz", "fuzzer", "Fuzzer")
    await app.core.handle(Message(actor, place(dm), f"e{next(_ids)}", text, mentioned=mentioned), out)
    assert "Traceback" not in visible(out) and "incident" not in visible(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action_id=st.one_of(TEXT, st.sampled_from(["thread:", "regen:x", "fb:up:", "fb:sideways:1", "starter:1:99",
                                                  "search::", "browse:Nope:1", "build:set", "delete:abc", "rank:"])),
       values=st.lists(TEXT, max_size=2))
async def test_actions_never_crash(app: App, action_id: str, values: list[str]) -> None:
    out = Recorder()
    actor = Actor("fuzz", "fuzzer", "Fuzzer")
    await app.core.handle(Action(actor, place(False), f"e{next(_ids)}", action_id, tuple(values)), out)
    assert out.replies and "incident" not in visible(out)


@settings(max_examples=300, deadline=None)
@given(group=st.sampled_from(["gpt", "gpt-admin", "nope"]), text=TEXT)
def test_text_parser_refuses_politely(group: str, text: str) -> None:
    try:
        parsed = parse(group, text)
    except UserError as exc:
        assert exc.msgid  # a message written for people, with the usage line where it helps
    else:
        assert (parsed.spec.group, parsed.spec.name) in COMMANDS
