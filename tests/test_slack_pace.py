"""`pace`: how a streamed answer becomes Web API calls on Slack (appendStream, or chat.update)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.adapters.slack_outbox import pace


async def _tokens(words: list[str], *, gap: float | None) -> AsyncIterator[str]:
    for word in words:
        if gap is not None:
            await asyncio.sleep(gap)
        yield word


async def test_an_answer_complete_before_the_first_push_is_left_whole_to_the_final_write() -> None:
    pushed: list[str] = []

    async def push(text: str) -> None:
        pushed.append(text)

    text = await pace(_tokens(["a ", "b ", "c"], gap=None), push, interval=1.0)
    assert text == "a b c"
    assert pushed == []  # nothing was on screen yet: the caller's one final write shows it all


async def test_a_push_shows_what_has_arrived_by_the_time_it_starts() -> None:
    pushed: list[str] = []
    release = asyncio.Event()

    async def push(text: str) -> None:
        pushed.append(text)
        await release.wait()  # a slow Web API call: the model goes on meanwhile

    async def words() -> AsyncIterator[str]:
        yield "a "
        await asyncio.sleep(0)  # the first push starts here, with "a "
        yield "b "
        yield "c"
        release.set()
        await asyncio.sleep(0.01)
        yield " d"
        await asyncio.sleep(0.01)  # the second push starts here
        yield " e"  # the last chunk: left to the caller's final write

    text = await pace(words(), push, interval=0.0)
    assert text == "a b c d e"
    # the first chunk at once; what came during that slow push, together with the next chunk
    assert pushed == ["a ", "a b c d"]
