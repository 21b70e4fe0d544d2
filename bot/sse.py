"""A lean Server-Sent Events decoder for chat-completion streams.

Why not openai-python's own stream: it builds a pydantic model for every chunk, about 250 µs of
CPU each (measured with `python -m bench --only concurrency` and py-spy: `construct_type` was a
third of the gateway's time). A 50-token answer is 52 chunks, so 1 000 concurrent answers cost
seconds of CPU before a single byte reaches a person. The gateway still sends the request through
its one `AsyncOpenAI` client (auth, headers, status errors); only the body is read here.

The decoder follows the SSE rules the API relies on: events end at a blank line; `data:` lines
of one event are joined with newlines; one leading space after the colon is dropped; comments
(`:`), `id:` and `retry:` are ignored; CRLF and LF line endings are both accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

__all__ = ["SSEDecoder", "StreamError", "StreamStalled", "chat_deltas"]


class SSEDecoder:
    """Feed it the body's bytes as they arrive; it returns the events completed so far."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """(event name, data) for each event this chunk completed ("" when the event is unnamed)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[tuple[str, bytes]] = []
        for line in lines:
            self._line(line, events)
        return events

    def flush(self) -> list[tuple[str, bytes]]:
        """The end of the body: a last event that was not followed by a blank line."""
        events: list[tuple[str, bytes]] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[tuple[str, bytes]]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data:
                events.append((self._event, self._data[0] if len(self._data) == 1 else b"\n".join(self._data)))
                self._data = []
            self._event = ""
            return
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")


class StreamStalled(Exception):
    """No bytes for `stall_timeout` seconds."""


class StreamError(Exception):
    """The server reported an error inside the stream (an `error` object instead of a chunk)."""

    def __init__(self, message: str, body: object) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


DRAIN_SECONDS = 0.1
"""After `[DONE]`, how long to wait for the body's end so the connection can be reused."""


async def chat_deltas(
    body: AsyncIterator[bytes], *, stall_timeout: float
) -> AsyncIterator[str | tuple[int, int]]:
    """The answer's text as it arrives, then (prompt, completion) tokens once, at the end.

    The text deltas of one read are joined into one piece: a busy server (or a busy bot) delivers
    many events per read, and every piece costs every layer above (the gateway, the leak guard,
    the platform's pacing) a step of its own. The usage is the server's usage chunk, or, when the
    server sends none, (0, the number of text deltas). Only the wait for the next bytes is timed
    (`StreamStalled`): time the caller spends between two pieces never counts as the server's
    silence. Raises StreamError for an error event and ValueError for a chunk that is not a JSON
    object, after the text that came before it; the HTTP library's errors pass through.
    """
    decoder = SSEDecoder()
    reader = aiter(body)
    watch = _StallWatch(stall_timeout)
    deltas = 0
    usage: tuple[int, int] | None = None
    try:
        while True:
            try:
                block = await watch.read(reader)
                events = decoder.feed(block)
            except StopAsyncIteration:
                events, block = decoder.flush(), b""
            texts: list[str] = []
            failure: Exception | None = None
            done = False
            for name, data in events:
                if data == b"[DONE]":
                    done = True
                    break
                try:
                    chunk = orjson.loads(data)  # ~5× faster than json's, and every chunk is parsed
                except ValueError as error:
                    failure = error
                    break
                if not isinstance(chunk, dict):
                    failure = ValueError("a stream chunk is not a JSON object")
                    break
                if name == "error" or chunk.get("error"):
                    failure = _error(chunk)
                    break
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if text:
                        texts.append(text)
                        deltas += 1
                found = chunk.get("usage")
                if isinstance(found, dict):
                    usage = int(found.get("prompt_tokens") or 0), int(found.get("completion_tokens") or 0)
            if texts:
                yield texts[0] if len(texts) == 1 else "".join(texts)
            if failure is not None:
                raise failure
            if done:
                await _drain(reader)
            if done or not block:
                yield usage if usage is not None else (0, deltas)
                return
    finally:
        watch.stop()
        closer = getattr(reader, "aclose", None)
        if closer is not None:
            await closer()


class _StallWatch:
    """Times the waits for the next bytes with one timer per stream, not one per read.

    Why: `asyncio.timeout` around each read schedules and cancels a timer for every token, and a
    streamed answer is read token by token (a 50-token answer at 100 tokens/s: 50 reads). That
    cost 6–10 µs of CPU per read here, 4–5 % of the bot's CPU per answer in bursts of 200 through
    discord.py (py-spy, bench/platform.py). Here the timer is armed once and, when it fires,
    either finds the current wait long enough to be a stall or re-arms itself for the moment the
    current wait would become one; a read that finds it armed just notes when it began. A stall
    cancels the reading task exactly as `asyncio.timeout` does, and a cancellation from outside
    stays a cancellation.
    """

    __slots__ = ("_base", "_handle", "_loop", "_seconds", "_since", "_stalled", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[object] | None = None  # the task of the current wait
        self._handle: asyncio.TimerHandle | None = None
        self._since: float | None = None  # when the current wait began; None between waits
        self._stalled = False
        self._base = 0

    async def read(self, reader: AsyncIterator[bytes]) -> bytes:
        self._task = task = asyncio.current_task()
        if task is None:  # not in a task (cannot be cancelled): no stall detection to offer
            return await anext(reader)
        self._since = self._loop.time()
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + self._seconds, self._check)
        self._base = task.cancelling()
        try:
            return await anext(reader)
        except asyncio.CancelledError:
            if self._stalled and task.uncancel() <= self._base:
                raise StreamStalled() from None
            raise
        finally:
            self._since = None

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        if self._since is None or self._task is None:  # between waits: the next wait arms it again
            return
        due = self._since + self._seconds
        if self._loop.time() >= due:
            self._stalled = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)


def _error(chunk: dict[str, object]) -> StreamError:
    error = chunk.get("error", chunk)
    message = error.get("message") if isinstance(error, dict) else None
    return StreamError(message if isinstance(message, str) and message else "An error occurred during streaming",
                       error)


async def _drain(reader: AsyncIterator[bytes]) -> None:
    """Read what follows `[DONE]` (the end of the chunked body) so the connection is reusable."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in reader:
                pass
    except Exception:  # noqa: BLE001 - the answer is complete; a messy ending only costs the connection
        pass
