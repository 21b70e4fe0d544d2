"""Start-up: `gptstore run` until it serves, with a big catalogue in the store.

The real command in a child process, configured for Slack in HTTP mode (a bot token and a
signing secret; nothing is fetched from Slack at start-up) with the scheduler on, as an operator
runs it. "Ready" is the first 200 from its `/healthz`. Measured with catalogues ×10 apart: a
big store must not slow the start. Target: ≤ 2 s with 100 000 GPTs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

import aiohttp

from bench import report
from bench.fakellm import FakeLLMProcess
from bench.report import Row
from bench.seed import seeded_store

NAME = "startup"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def time_to_ready(database_url: str, llm_url: str, give_up: float = 60.0) -> float:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPTSTORE_")},
        "GPTSTORE_DATABASE_URL": database_url, "GPTSTORE_LLM_BASE_URL": llm_url,
        "GPTSTORE_SLACK_BOT_TOKEN": "xoxb-bench-token", "GPTSTORE_SLACK_SIGNING_SECRET": "bench-signing-secret",
        "GPTSTORE_SLACK_HOST": "127.0.0.1", "GPTSTORE_SLACK_PORT": str(port), "GPTSTORE_LOG_LEVEL": "WARNING",
        "GPTSTORE_LLM_LOCAL": "false",
    }
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            while time.perf_counter() - started < give_up:
                if proc.returncode is not None:
                    err = (await proc.stderr.read()).decode()[-500:] if proc.stderr else ""
                    raise RuntimeError(f"gptstore run exited with {proc.returncode}: {err}")
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.01)
        raise TimeoutError(f"gptstore run was not ready after {give_up:g} s")
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [1_000, 10_000] if quick else [10_000, 100_000]
    runs = 1 if quick else 3
    rows: list[Row] = []
    async with FakeLLMProcess(latency=0.0, tokens=5) as llm:
        for backend in backends:
            times: list[float] = []
            for size in sizes:
                async with seeded_store(backend, gpts=size) as (store, _):
                    best = min([await time_to_ready(store.url, llm.base_url) for _ in range(runs)])
                times.append(best)
                label = f"{size:,} GPTs".replace(",", " ")
                rows.append(report.at_most(NAME, f"`gptstore run` to ready, {label}", best, "s", 2, backend=backend,
                                           note=f"best of {runs}"))
            rows.append(report.info(NAME, f"growth, catalogue ×{sizes[-1] // sizes[0]}", times[-1] / times[0], "×",
                                    backend=backend))
    return rows
