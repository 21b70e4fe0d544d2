"""The lean SSE reader the LLM gateway streams through (bot/sse.py).

The gateway's own tests (tests/test_llm.py) drive it through the real client against the fake
server; these pin the parts of the SSE format a real server may use and the fake does not:
events split across reads, CRLF line ends, multi-line data, comments, named error events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest

from bot.sse import SSEDecoder, StreamError, StreamStalled, chat_deltas


def decode(*reads: bytes) -> list[tuple[str, bytes]]:
    decoder = SSEDecoder()
    events: list[tuple[str, bytes]] = []
    for read in reads:
        events += decoder.feed(read)
    return events + decoder.flush()


def test_events_split_anywhere_across_reads() -> None:
    body = b'data: {"a": 1}\n\ndata: {"b": 2}\n\n'
    whole = decode(body)
    assert whole == [("", b'{"a": 1}'), ("", b'{"b": 2}')]
    for cut in range(1, len(body)):
        assert decode(body[:cut], body[cut:]) == whole


def test_crlf_comments_multiline_data_and_names() -> None:
    body = b": keep-alive\r\nevent: error\r\ndata: first\r\ndata:second\r\nid: 7\r\n\r\ndata: [DONE]"
    assert decode(body) == [("error", b"first\nsecond"), ("", b"[DONE]")]


async def body(*reads: bytes) -> AsyncIterator[bytes]:
    for read in reads:
        yield read


async def collect(reads: Iterable[bytes]) -> list[str | tuple[int, int]]:
    return [item async for item in chat_deltas(body(*reads), stall_timeout=1.0)]


def chunk(text: str) -> bytes:
    return b'data: {"choices": [{"index": 0, "delta": {"content": "' + text.encode() + b'"}}]}\n\n'


async def test_deltas_then_usage_and_nothing_after_done() -> None:
    usage = b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}\n\n'
    got = await collect([chunk("Hel"), chunk("lo") + usage + b"data: [DONE]\n\n" + chunk("ignored")])
    assert got == ["Hel", "lo", (3, 2)]


async def test_the_deltas_of_one_read_come_as_one_piece_and_are_counted_without_usage() -> None:
    got = await collect([chunk("Hel") + chunk("lo") + chunk(" you"), chunk("!") + b"data: [DONE]\n\n"])
    assert got == ["Hello you", "!", (0, 4)]  # no usage from the server: its four deltas


async def test_the_text_before_an_error_is_still_delivered() -> None:
    got: list[object] = []
    with pytest.raises(StreamError):
        async for item in chat_deltas(body(chunk("Hi") + chunk(" there") + b'data: {"error": {"message": "x"}}\n\n'),
                                      stall_timeout=1.0):
            got.append(item)
    assert got == ["Hi there"]


async def test_an_error_object_in_the_stream_is_a_stream_error() -> None:
    with pytest.raises(StreamError) as info:
        await collect([chunk("Hi"), b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'])
    assert info.value.message == "overloaded"


async def test_a_chunk_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        await collect([chunk("Hi"), b"data: {not json\n\n"])


async def test_silence_is_a_stall() -> None:
    async def hangs() -> AsyncIterator[bytes]:
        yield chunk("Hi")
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    got: list[object] = []
    with pytest.raises(StreamStalled):
        async for item in chat_deltas(hangs(), stall_timeout=0.05):
            got.append(item)
    assert got == ["Hi"]


async def test_only_one_silence_longer_than_the_stall_timeout_is_a_stall() -> None:
    """The stall timer is armed once per stream (bot/sse.py `_StallWatch`): a stream whose bytes
    come steadily, each well within the timeout, is never cut however long it lasts, and a silence
    that begins after the caller was busy for longer than the timeout is still caught."""
    async def steady_then_silent(parts: int) -> AsyncIterator[bytes]:
        for n in range(parts):
            await asyncio.sleep(0.03)
            yield chunk(str(n))
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    got: list[object] = []
    started = asyncio.get_running_loop().time()
    with pytest.raises(StreamStalled):
        async for item in chat_deltas(steady_then_silent(10), stall_timeout=0.1):
            got.append(item)
            if item == "4":
                await asyncio.sleep(0.25)  # busy for more than twice the timeout, between two reads
    assert got == [str(n) for n in range(10)]  # 0.55 s of reading in all: no stall before the silence
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_slow_reader_is_not_a_stall_and_a_cancel_from_outside_stays_a_cancel() -> None:
    """Only the wait for bytes counts: a caller that takes longer than the stall timeout between
    two deltas (a slow platform edit) does not make the stream 'stalled'; and cancelling the
    reading task is still a cancellation, not a stall."""
    async def steady() -> AsyncIterator[bytes]:
        for text in ("a", "b", "c"):
            yield chunk(text)
        yield b"data: [DONE]\n\n"

    got: list[object] = []
    async for item in chat_deltas(steady(), stall_timeout=0.05):
        got.append(item)
        await asyncio.sleep(0.12)  # the caller is busy for more than twice the stall timeout
    assert got == ["a", "b", "c", (0, 3)]

    async def hangs() -> AsyncIterator[bytes]:
        yield chunk("Hi")
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    async def read() -> None:
        async for _ in chat_deltas(hangs(), stall_timeout=10):
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
