"""The fake OpenAI-compatible server, in its own process, answering with a set number of tokens.

Load benchmarks run it in a child process so that the fake's CPU (it writes every SSE chunk)
is not counted against the bot's: on the real deployment the model runs elsewhere too.
Every answer is `tokens` tokens long ("w0 w1 … "), whatever the question, so that the work per
answer is the same at every size.

    async with FakeLLMProcess(latency=0.5, tokens=50) as llm:
        settings = bench_settings(url, llm.base_url)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from types import TracebackType
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, default_responder


def fixed_answer(tokens: int) -> str:
    return "".join(f"w{i} " for i in range(tokens)).rstrip() if tokens else ""


def configure(fake: FakeOpenAI, tokens: int | None) -> FakeOpenAI:
    if tokens is not None:
        answer = fixed_answer(tokens)

        def responder(messages: list[dict[str, Any]], model: str) -> str:
            return answer

        fake.responder = responder
    else:
        fake.responder = default_responder
    fake.models = []  # accept whatever model a seeded GPT names
    return fake


class _Forgetful(list):  # type: ignore[type-arg]
    """`FakeOpenAI.requests` for a load target: counts requests, keeps none (memory stays flat)."""

    def append(self, item: object) -> None:
        pass


class FakeLLMProcess:
    """`python -m bench.fakellm` as a child process; `base_url` once it listens."""

    def __init__(self, *, latency: float, tokens: int, token_rate: float | None = None) -> None:
        self.latency = latency
        self.tokens = tokens
        self.token_rate = token_rate
        self.base_url = ""
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> FakeLLMProcess:
        args = [sys.executable, "-m", "bench.fakellm", "--latency", str(self.latency), "--tokens", str(self.tokens)]
        if self.token_rate:
            args += ["--token-rate", str(self.token_rate)]
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line.startswith(b"http://"):
            raise RuntimeError(f"the fake LLM did not start: {line!r}")
        self.base_url = line.decode().strip()
        return self

    async def configure(self, *, latency: float, token_rate: float | None) -> None:
        """Change the running fake's pace (it applies to the requests that start afterwards)."""
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{latency} {token_rate or 0}\n".encode())
        await self._proc.stdin.drain()
        if (await asyncio.wait_for(self._proc.stdout.readline(), 10)).strip() != b"OK":
            raise RuntimeError("the fake LLM did not take its new pace")
        self.latency, self.token_rate = latency, token_rate

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5)
            if self._proc.returncode is None:
                self._proc.kill()
                await self._proc.wait()


async def raw_round_trips(base_url: str, count: int) -> list[float]:
    """Seconds per streamed answer read with a bare socket: the LLM's own share of an ask.

    One keep-alive connection, a minimal HTTP/1.1 request and no parsing beyond spotting the
    end of the chunked body: what remains of an ask's time after this is the bot's.
    """
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    body = b'{"model":"m","stream":true,"stream_options":{"include_usage":true},' \
           b'"messages":[{"role":"user","content":"What can you do for me?"}]}'
    request = (f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    times: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            buffer = b""
            while not (b"[DONE]" in buffer and buffer.endswith(b"0\r\n\r\n")):
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the fake LLM closed the connection")
                buffer = buffer[-64:] + data
            times.append(time.perf_counter() - started)
    finally:
        writer.close()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the fake LLM for benchmarks")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--token-rate", type=float, default=None)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args(argv)

    async def serve() -> None:
        fake = configure(FakeOpenAI(args.latency, args.token_rate), args.tokens)
        fake.requests = _Forgetful()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def pace() -> None:  # "<latency> <tokens per second, 0 = unpaced>" per line
            while line := (await reader.readline()).decode().split():
                fake.latency, fake.token_rate = float(line[0]), float(line[1]) or None
                print("OK", flush=True)

        async with fake:
            print(fake.base_url, flush=True)
            control = asyncio.create_task(pace())
            await stop.wait()
            control.cancel()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
