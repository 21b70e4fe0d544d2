"""Stream: the bot's CPU for reading streamed answers, through the LLM gateway alone.

Why on its own: in `platform`'s bursts (LLM 500 ms, then 50 tokens at 100 tokens/s) each token
comes in a TCP segment of its own and wakes the bot: the kernel's epoll and recv, aiohttp's
parser and stream reader, the SSE decoder and the gateway, once per token. None of that depends on
the store or the platform, and it is a large share of the bot's CPU per answer there (target ≤ 5
ms): this is the floor under that figure. The same answers sent all at once are read in a few
reads, which shows what the token-by-token arrival costs. No targets: figures to read next to
`platform`'s. The store plays no part, so this runs once, not per store.
"""

from __future__ import annotations

import asyncio

from bench import report
from bench.fakellm import FakeLLMProcess, fixed_answer
from bench.harness import cpu_seconds
from bench.report import Row
from bot.llm import LLMGateway, Usage

NAME = "stream"
TOKENS = 50
RATE = 100.0  # tokens per second, as in `platform`'s bursts


async def _answers(gateway: LLMGateway, n: int) -> tuple[float, float, int]:
    """(CPU seconds per answer, pieces of text per answer, complete answers) for n answers at once."""
    expected = fixed_answer(TOKENS)

    async def one() -> tuple[int, bool]:
        pieces, text = 0, []
        async for item in gateway.stream(model=None, messages=[{"role": "user", "content": "Hello"}]):
            if not isinstance(item, Usage):
                pieces += 1
                text.append(item)
        return pieces, "".join(text) == expected

    cpu0 = cpu_seconds()
    results = await asyncio.gather(*(one() for _ in range(n)))
    cpu = cpu_seconds() - cpu0
    return cpu / n, sum(pieces for pieces, _ in results) / n, sum(1 for _, ok in results if ok)


async def run(quick: bool, backends: list[str]) -> list[Row]:
    n = 20 if quick else 200
    rows: list[Row] = []
    async with FakeLLMProcess(latency=0.0, tokens=TOKENS) as llm:
        gateway = LLMGateway(base_url=llm.base_url, api_key=None, default_model="bench", models=[], max_retries=0)
        try:
            for label, rate in ((f"{TOKENS} tokens at {RATE:g}/s", RATE), (f"{TOKENS} tokens sent at once", None)):
                await llm.configure(latency=0.2, token_rate=rate)
                await _answers(gateway, n)  # connections opened, code warm
                cpu, pieces, complete = await _answers(gateway, n)
                rows += [
                    report.info(NAME, f"{n} answers at once, {label}: bot CPU per answer", cpu * 1000, "ms"),
                    report.info(NAME, f"{n} answers at once, {label}: pieces of text per answer", pieces, "pieces"),
                    report.exactly(NAME, f"{n} answers at once, {label}: complete answers", complete, "answers", n),
                ]
        finally:
            await gateway.aclose()
    return rows
