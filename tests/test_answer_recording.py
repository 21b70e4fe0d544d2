"""An answer's use is recorded however its delivery ends: read to the end, abandoned half-way by
the platform, or never read at all because posting failed. The use never stays pending."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from bot.bootstrap import App
from bot.events import Actor, Command, Message, Place
from bot.replies import Reply, Sent
from store.models import Conversation, Invocation, SeenEvent, Turn
from tests.conftest import Terminal
from tests.fakes.openai_server import FakeOpenAI
from tests.policy_helpers import TUTOR_INSTRUCTIONS, publish, rows


class PlatformDown(Exception):
    pass


class Outbox:
    """`read`: how many chunks of a streamed answer the platform takes before it stops (None: all);
    `fail`: posting raises before anything is read."""

    def __init__(self, *, read: int | None = None, fail: bool = False) -> None:
        self.read, self.fail = read, fail
        self.chunks: list[str] = []

    async def send(self, reply: Reply) -> Sent:
        if reply.stream is None:
            return Sent(message_id="m-plain", channel_id="general")
        if self.fail:
            raise PlatformDown("the platform refused the post")
        async for chunk in reply.stream:
            self.chunks.append(chunk)
            if self.read is not None and len(self.chunks) >= self.read:
                break
        return Sent(message_id="m-answer", channel_id="general")


def ask(event_id: str) -> Command:
    return Command(Actor("console", "bob", "Bob"), Place("console", "general"), event_id, "gpt", "ask",
                   {"gpt": "math-tutor", "prompt": "What is 2x = 4?"})


@pytest.fixture
async def tutor(app: App) -> None:
    await publish(Terminal(app), "alice", "Math Tutor", "Helps with algebra homework.", TUTOR_INSTRUCTIONS)


@pytest.mark.usefixtures("tutor")
async def test_every_ending_of_a_delivery_is_recorded(app: App, fake_llm: FakeOpenAI) -> None:
    fake_llm.token_rate = None
    whole = Outbox()
    await app.core.handle(ask("e-whole"), whole)
    assert "".join(whole.chunks).startswith("Answer 1:")

    half = Outbox(read=1)  # the platform stopped reading after the first chunk
    await app.core.handle(ask("e-half"), half)
    assert len(half.chunks) == 1

    down = Outbox(fail=True)  # posting failed: the answer was never read
    await app.core.handle(ask("e-down"), down)
    assert down.chunks == []

    uses = sorted((i.event_key, i.status, i.error_code) for i in await rows(app, Invocation))
    assert uses == [
        ("console:e-down", "error", "undelivered"),
        ("console:e-half", "error", "interrupted"),
        ("console:e-whole", "ok", None),
    ]
    conversations = {c.id: c.message_ref for c in await rows(app, Conversation)}
    answers = [t for t in await rows(app, Turn) if t.role == "assistant"]
    assert sorted(conversations.values(), key=str) == [None, "m-answer", "m-answer"]  # where each answer was posted
    assert [conversations[t.conversation_id] for t in answers] == ["m-answer", "m-answer"]  # what was shown is kept
    assert answers[0].content == "".join(whole.chunks)
    assert answers[1].content == half.chunks[0]


@pytest.mark.usefixtures("tutor")
async def test_a_first_answer_records_where_it_was_posted_and_when(app: App, fake_llm: FakeOpenAI) -> None:
    """Where the answer went and the conversation's last activity are written together (one
    statement in the group commit): both must land, for a thread to follow it and for the
    conversation's age to be its answer's."""
    fake_llm.token_rate = None
    await app.core.handle(ask("e-first"), Outbox())
    [conversation] = await rows(app, Conversation)
    [answer] = [t for t in await rows(app, Turn) if t.role == "assistant"]
    assert conversation.message_ref == "m-answer"
    assert conversation.updated_at == answer.created_at > conversation.created_at


async def forget_seen_events(app: App) -> None:
    """What pruning does to old records of deliveries (store/events.py)."""
    async with app.db.session() as session:
        await session.execute(delete(SeenEvent))


@pytest.mark.usefixtures("tutor")
async def test_a_redelivery_whose_record_was_pruned_writes_nothing_twice(app: App, fake_llm: FakeOpenAI) -> None:
    """The invocation's event key is the last guard against a platform's retry: the pending use,
    the conversation it opens and the member's message are written together or not at all (on
    PostgreSQL one statement), for a new conversation and for a message in its thread."""
    fake_llm.token_rate = None
    in_thread = Place("console", "general", thread_id="t1")
    first = Command(Actor("console", "bob", "Bob"), in_thread, "e-ask", "gpt", "ask",
                    {"gpt": "math-tutor", "prompt": "What is 2x = 4?"})
    follow_up = Message(Actor("console", "bob", "Bob"), in_thread, "e-more", "And 3x = 9?")
    for event in (first, follow_up):
        await app.core.handle(event, Outbox())
    [conversation] = await rows(app, Conversation)
    before = sorted((t.role, t.content) for t in await rows(app, Turn))
    requests = len(fake_llm.requests)

    await forget_seen_events(app)
    for event in (first, follow_up):
        again = Outbox()
        await app.core.handle(event, again)
        assert again.chunks == []  # no second answer
    assert len(fake_llm.requests) == requests
    assert sorted(i.event_key for i in await rows(app, Invocation)) == ["console:e-ask", "console:e-more"]
    assert [c.id for c in await rows(app, Conversation)] == [conversation.id]
    assert sorted((t.role, t.content) for t in await rows(app, Turn)) == before
    assert [c.updated_at for c in await rows(app, Conversation)] == [conversation.updated_at]
    assert [t.content for t in await rows(app, Turn) if t.role == "user"] == ["What is 2x = 4?", "And 3x = 9?"]
