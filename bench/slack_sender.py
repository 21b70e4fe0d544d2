"""The Slack users of the platform benchmark, sending their signed requests from a process of their own.

Why: a burst is 100–200 signed HTTP POSTs sent at once, and sent from the process that serves the
fake Web API they would share one event loop with the fake's record of the bot's calls: the
sending could delay the timestamps of the bot's first replies, and the replies the timing of the
acknowledgements. Sent from here, neither waits on the other (README "What bounds the rest": the
first replies of a burst were as late as before, so the bot, not the harness, bounds them). The
requests are signed in the benchmark's process (the fake issues their response URLs and trigger
ids) and only sent from this one; the clock is `time.perf_counter()`, the same in both.

    wire = SenderProcess()
    await wire.start()
    sender = SentElsewhere(url, secret, fake=fake, wire=wire)
    await sender.slash_command(...)  # signed here, sent there
    await wire.close()

Each line in is one request (`{"id", "url", "headers", "body"}`), sent at once; each line out is
one answer (`{"id", "sent", "elapsed", "status", "text"}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp
from multidict import CIMultiDict

from tests.fakes.slack_fake import FakeSlackAPI, SlackResult, SlackSender


class SenderProcess:
    """`python -m bench.slack_sender` as a child process; `send` posts one request through it."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ids = 0

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.slack_sender", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        self._reader = asyncio.create_task(self._read())

    async def send(self, url: str, data: bytes, headers: dict[str, str], payload: Any = None) -> SlackResult:
        assert self._proc is not None and self._proc.stdin is not None
        self._ids += 1
        answer = self._waiting[self._ids] = asyncio.get_running_loop().create_future()
        line = {"id": self._ids, "url": url, "headers": headers, "body": data.decode()}
        self._proc.stdin.write(json.dumps(line).encode() + b"\n")
        await self._proc.stdin.drain()
        got = await answer
        if "error" in got:
            raise ConnectionError(got["error"])
        return SlackResult(got["status"], got["text"], CIMultiDict(), got["elapsed"], payload, got["sent"])

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            got = json.loads(line)
            waiting = self._waiting.pop(got["id"], None)
            if waiting is not None and not waiting.done():
                waiting.set_result(got)
        for waiting in self._waiting.values():  # the process ended: nobody waits forever
            if not waiting.done():
                waiting.set_exception(ConnectionError("the sender process ended"))

    async def close(self) -> None:
        if self._proc is None:
            return
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # end of input: it finishes what it sends, then exits
        try:
            await asyncio.wait_for(self._proc.wait(), 15)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


class SentElsewhere(SlackSender):
    """A `SlackSender` whose requests, built and signed here, go out through a `SenderProcess`."""

    def __init__(self, url: str, signing_secret: str, *, fake: FakeSlackAPI, wire: SenderProcess) -> None:
        super().__init__(url, signing_secret, fake=fake)
        self.wire = wire

    async def post(self, data: bytes, headers: dict[str, str], payload: Any = None) -> SlackResult:
        return await self.wire.send(self.url, data, headers, payload)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    sending: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def send(request: dict[str, Any]) -> None:
            answer: dict[str, Any] = {"id": request["id"]}
            started = time.perf_counter()
            try:
                async with session.post(request["url"], data=request["body"].encode(),
                                        headers=request["headers"]) as response:
                    text = await response.text()
                answer.update(sent=started, elapsed=time.perf_counter() - started, status=response.status,
                              text=text[:2000])
            except (aiohttp.ClientError, OSError) as error:
                answer["error"] = repr(error)
            out.write(json.dumps(answer).encode() + b"\n")
            out.flush()

        while line := await reader.readline():
            task = asyncio.create_task(send(json.loads(line)))
            sending.add(task)
            task.add_done_callback(sending.discard)
        if sending:
            await asyncio.gather(*sending)


if __name__ == "__main__":
    asyncio.run(_serve())
