"""The offline model (`local` extra): start-up, first token, tokens per second and memory.

Measured through the bot's own code: `bot.localmodel.LocalServer` starts `llama_cpp.server` with
the context size the default settings ask for, and the ordinary `LLMGateway` streams from it. The
figures tell an operator what the demo model costs on their machine. Without the extra installed
there is nothing to measure and the benchmark returns no rows.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.report import Row, at_least, at_most, info
from bot import localmodel
from bot.llm import LLMGateway, Usage
from config import load_settings

NAME = "local_model"
PROMPT = [
    {"role": "system", "content": "You are a storyteller. Write long, detailed stories."},
    {"role": "user", "content": "Tell me a long story about a cat who learns to sail."},
]


def rss_mb(pid: int) -> float:
    """Resident memory of a process from /proc (Linux), in MB; 0 where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def run(quick: bool, backends: list[str]) -> list[Row]:
    model = localmodel.find_model()
    if model is None:
        return []
    settings = load_settings(llm_base_url=None, llm_api_key=None)
    n_ctx = localmodel.context_size(settings)
    server = localmodel.LocalServer(model, n_ctx=n_ctx, log_path=Path(tempfile.gettempdir()) / "gptstore-bench-llm.log")
    await server.start()
    gateway = LLMGateway(base_url=server.base_url, api_key=None, default_model=server.model_id or "", models=[])
    rows: list[Row] = [
        at_most(NAME, "start-up until /v1/models answers", server.load_seconds or 0.0, "s", 10.0,
                note=f"{model.name}, n_ctx {n_ctx}, {server.threads} threads"),
    ]
    try:
        firsts: list[float] = []
        rates: list[float] = []
        for _ in range(1 if quick else 3):
            started = time.perf_counter()
            first: float | None = None
            usage = Usage(0, 0)
            async for item in gateway.stream(model=None, messages=PROMPT, max_tokens=64 if quick else 256):
                if isinstance(item, Usage):
                    usage = item
                elif first is None:
                    first = time.perf_counter()
            ended = time.perf_counter()
            assert first is not None, "the local model streamed no text"
            firsts.append(first - started)
            if usage.completion_tokens > 1 and ended > first:
                rates.append((usage.completion_tokens - 1) / (ended - first))
        rows.append(at_most(NAME, "first token (median)", sorted(firsts)[len(firsts) // 2], "s", 0.5))
        rows.append(at_least(NAME, "tokens per second (median)", sorted(rates)[len(rates) // 2] if rates else 0.0,
                             "tok/s", 50.0))
        rows.append(at_most(NAME, "server RSS after answering", rss_mb(server.pid or 0), "MB", 400.0))
        rows.append(info(NAME, "model file", model.stat().st_size / 1e6, "MB"))
    finally:
        await gateway.aclose()
        await server.aclose()
    return rows


if __name__ == "__main__":
    import asyncio

    from bench.report import render

    render(asyncio.run(run(False, ["sqlite"])), title=NAME)
