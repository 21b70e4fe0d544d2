"""Under a burst, events get their first reply in the order they came (bot/admission.py): at most
`starts_at_once` events are worked on before their first reply, first come first served, and no
event holds its turn past its first reply or `HOLD_AT_MOST` seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot import admission
from bot.admission import Admission
from bot.bootstrap import bootstrap
from bot.events import Actor, Command, Message, Place
from bot.replies import Reply
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.test_fuzz_core import Recorder


async def test_turns_go_in_the_order_events_came_and_only_so_many_at_once() -> None:
    turns = Admission(2)
    started: list[int] = []
    inside = most = 0

    async def event(i: int) -> None:
        nonlocal inside, most
        async with turns.turn(Recorder()) as out:
            started.append(i)
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)  # the work before the first reply: others may run meanwhile
            inside -= 1
            await out.send(Reply(text=f"answer {i}"))

    await asyncio.gather(*(event(i) for i in range(8)))
    assert started == list(range(8))
    assert most == 2


async def second_gets_a_turn(turns: Admission, first: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """`first` takes the only turn and works on until a second event has had one: this returns only
    if the first event's turn ended while it was still working."""
    second_started = asyncio.Event()

    async def second() -> None:
        async with turns.turn(Recorder()):
            second_started.set()

    await asyncio.wait_for(asyncio.gather(first(second_started), second()), 10)


async def test_the_first_reply_ends_the_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 60.0)  # only the reply can end it here
    turns = Admission(1)

    async def first(second_started: asyncio.Event) -> None:
        async with turns.turn(Recorder()) as out:
            await out.send(Reply(text="thinking…"))
            await second_started.wait()  # still working (an answer streaming), but no longer in the way
            await out.send(Reply(text="done"))

    await second_gets_a_turn(turns, first)


async def test_a_turn_without_a_reply_ends_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 0.05)
    turns = Admission(1)

    async def slow(second_started: asyncio.Event) -> None:
        async with turns.turn(Recorder()):
            await second_started.wait()  # e.g. a draft from the LLM before anything is said

    await second_gets_a_turn(turns, slow)


async def test_a_failing_event_gives_its_turn_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 60.0)
    turns = Admission(1)
    with pytest.raises(RuntimeError):
        async with turns.turn(Recorder()):
            raise RuntimeError("boom")

    async def next_event() -> None:
        async with turns.turn(Recorder()) as out:  # would wait for the turn if the failed event had kept it
            await out.send(Reply(text="still served"))

    await asyncio.wait_for(next_event(), 10)


@pytest.fixture
async def one_at_a_time(database_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[object]:
    app = await bootstrap(make_settings(database_url, fake_llm.base_url, starts_at_once=1), migrate=True)
    yield app
    await app.aclose()


async def test_a_slow_draft_does_not_hold_up_someone_elses_command(one_at_a_time: object, fake_llm: FakeOpenAI) -> None:
    """One event at a time: carol's builder message waits two seconds for the LLM's draft before
    its first reply; dan's /gpt help, sent just after, is answered first all the same."""
    app = one_at_a_time
    carol = Actor("discord", "u-carol", "Carol")
    dm = Place(None, "dm-carol", is_dm=True)
    out = Recorder()
    await app.core.handle(Command(carol, dm, "e1", "gpt", "create"), out)  # type: ignore[attr-defined]
    assert "Tell me in your own words" in out.replies[-1].text

    fake_llm.latency = 2.0
    order: list[str] = []

    class Named(Recorder):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def send(self, reply: Reply):  # type: ignore[no-untyped-def]
            order.append(self.name)
            return await super().send(reply)

    carols, dans = Named("carol"), Named("dan")
    drafting = asyncio.create_task(app.core.handle(  # type: ignore[attr-defined]
        Message(carol, dm, "e2", "A patient math tutor for high school algebra homework"), carols))
    await asyncio.sleep(0.1)  # carol's event has its turn and waits for the LLM
    dan = Actor("discord", "u-dan", "Dan")
    await app.core.handle(Command(dan, Place("g1", "general"), "e3", "gpt", "help"), dans)  # type: ignore[attr-defined]
    await drafting
    assert order == ["dan", "carol"]
    assert "/gpt ask" in dans.replies[0].text
    assert "Here is a draft" in carols.replies[0].text


async def test_no_turn_starts_while_an_acknowledgement_is_on_its_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a person waits to see on the platform goes first: a turn waits until the
    acknowledgement's request is written, then starts (the platform's answer is not waited for)."""
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 60.0)
    turns = Admission(8)
    started = asyncio.Event()

    async def event() -> None:
        async with turns.turn(Recorder()):
            started.set()

    with turns.urgent() as written:
        waiting = asyncio.create_task(event())
        await asyncio.sleep(0.05)
        assert not started.is_set()
        written()
        await asyncio.wait_for(started.wait(), 5)  # before the acknowledgement is answered
    await waiting


async def test_an_acknowledgement_never_holds_turns_back_longer_than_a_turn_may_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 0.05)
    turns = Admission(8)
    started: list[int] = []

    async def event(i: int) -> None:
        async with turns.turn(Recorder()):
            started.append(i)

    with turns.urgent():  # a request that is never written (stuck before the network)
        await asyncio.wait_for(asyncio.gather(*(event(i) for i in range(3))), 5)
    assert started == [0, 1, 2]
    monkeypatch.setattr(admission, "HOLD_AT_MOST", 60.0)
    with turns.urgent(), turns.urgent() as second:  # ended twice, counted once
        second()
        second()
    await asyncio.wait_for(event(3), 5)  # none left on its way out: no wait
