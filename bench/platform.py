"""Platform: `/gpt ask` through the real discord.py and Bolt adapters, against fake platforms.

Three processes, as in production: the fake platform and the people using it (this process), the
bot (bench/platform_bot.py: bootstrap + the production adapter) and the fake LLM. Times come
from the fake platform's record of the bot's calls.

Members of a community: each of them asks once first, one at a time (their accounts are created
then; the first ask of a new member is reported on its own), then every ask below comes from
a member the bot has seen before, as in a server where people use GPTs day to day.

* One at a time, LLM instant: complete answer minus the LLM's own time, p50 / p95
  (targets ≤ 5 ms / ≤ 10 ms).
* Burst, N asks at once, LLM 500 ms to the first token then 50 tokens at 100 tok/s: the slowest
  complete answer (≤ 1.5 s), first visible reply p95 (≤ 50 ms), the answer's first words p95 (no
  target: the LLM's first token comes after 500 ms), Slack acknowledgements (p95 ≤ 100 ms,
  none past 3 s), the bot's CPU per answer (≤ 5 ms), and streaming manners: edits of one message in
  any second, final edit excluded (≤ 1), Discord calls counting against the global limit in any
  second (≤ 50), the final edit after the last token (p95 ≤ 50 ms).
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from bench import report
from bench.fakellm import FakeLLMProcess, fixed_answer, raw_round_trips
from bench.platform_drivers import DiscordDriver, Outcome, SlackDriver
from bench.report import Row, percentile
from bench.seed import seeded_store

NAME = "platform"
TOKENS = 50
ANSWER = fixed_answer(TOKENS)


def _max_in_window(times: list[float], width: float = 1.0) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _until(driver: Any, count: int, within: float, step: float) -> None:
    """Until `count` answers are complete, or `within` seconds: what is missing shows in the rows."""
    deadline = time.perf_counter() + within
    while driver.finished() < count and time.perf_counter() < deadline:  # noqa: ASYNC110 - polls the fake's record
        await asyncio.sleep(step)


async def _store(backend: str) -> tuple[Any, Any, list[str]]:
    store_cm = seeded_store(backend, gpts=1_000)
    store, catalogue = await store_cm.__aenter__()
    return store_cm, store, catalogue.slugs


async def measure(kind: type, backend: str, asks: int, sizes: list[int]) -> list[Row]:
    """One bot process per platform: each member's first ask, then one ask at a time (LLM
    instant), then the bursts; every ask after the first ones comes from a known member."""
    members = max(sizes)
    async with FakeLLMProcess(latency=0.0, tokens=TOKENS) as llm:
        await raw_round_trips(llm.base_url, 20)
        llm_time = percentile(await raw_round_trips(llm.base_url, 200), 50)
        store_cm, store, slugs = await _store(backend)
        driver = kind(store.url, llm.base_url, members + asks + sum(sizes))
        try:
            await driver.start()
            firsts: list[Outcome] = []
            for i in range(members):  # each member's first ask: their account is created
                await driver.ask(i, slugs[i % len(slugs)], f"q{i}", member=i)
                await _until(driver, i + 1, 30, 0.001)
                firsts.append(driver.outcome(f"q{i}", ANSWER))
            outcomes: list[Outcome] = []
            for i in range(members, members + asks):
                await driver.ask(i, slugs[i % len(slugs)], f"q{i}", member=i % members)
                await _until(driver, i + 1, 30, 0.001)
                outcomes.append(driver.outcome(f"q{i}", ANSWER))
            rows = _single_rows(driver.name, backend, outcomes, llm_time, asks, firsts[5:])
            await llm.configure(latency=0.5, token_rate=100)
            await driver.bot.ask("ends")
            first = done_before = members + asks
            for n in sizes:
                _settle_harness()
                cpu0 = (await driver.bot.ask("cpu"))["cpu"]
                tags = [f"b{first + k}" for k in range(n)]
                started = time.perf_counter()
                await asyncio.gather(*(driver.ask(first + k, slugs[(first + k) % len(slugs)], tag, member=k % members)
                                       for k, tag in enumerate(tags)))
                await _until(driver, done_before + n, 60, 0.02)
                ended = time.perf_counter()
                cpu = (await driver.bot.ask("cpu"))["cpu"] - cpu0
                ends = await driver.bot.ask("ends")
                rows += _burst_rows(driver, backend, n, tags, started, ended, cpu, ends)
                first += n
                done_before += n
        finally:
            gc.unfreeze()
            await driver.stop()
            await store_cm.__aexit__(None, None, None)
    return rows


def _settle_harness() -> None:
    """Before a burst, this process (the fake platform and its record of every call) is collected
    and what is alive frozen, as the bot does at start-up (`bot.heap`): the record of the asks
    before grows to a few hundred thousand objects, and the full collection a burst's allocations
    then set off stopped this process for 80–90 ms in the middle of the first burst, so that the
    fake Discord took the interactions' responses late and the bot's first visible replies looked
    that much later (Discord, 100 at once on SQLite: p95 115–126 ms with the pause, 39–51 ms without)."""
    gc.collect()
    gc.freeze()


def _single_rows(name: str, backend: str, outcomes: list[Outcome], llm_time: float, asks: int,
                 firsts: list[Outcome]) -> list[Row]:
    extra = [(o.done or 0) - o.sent - llm_time for o in outcomes if o.complete]
    rows = [report.info(NAME, f"{name}: LLM alone, p50", llm_time * 1000, "ms", backend=backend)]
    if first := [(o.done or 0) - o.sent - llm_time for o in firsts if o.complete]:  # the first 5 warm up
        rows.append(report.info(NAME, f"{name}: a new member's first ask, complete answer minus LLM, p50",
                                percentile(first, 50) * 1000, "ms", backend=backend))
    if extra:
        rows += [
            report.at_most(NAME, f"{name}: one ask, complete answer minus LLM, p50", percentile(extra, 50) * 1000,
                           "ms", 5, backend=backend),
            report.at_most(NAME, f"{name}: one ask, complete answer minus LLM, p95", percentile(extra, 95) * 1000,
                           "ms", 10, backend=backend),
        ]
    rows.append(report.exactly(NAME, f"{name}: one at a time, complete answers", len(extra), "answers", asks,
                               backend=backend))
    return rows


def _burst_rows(driver: Any, backend: str, n: int, tags: list[str], started: float, ended: float, cpu: float,
                ends: dict[str, float]) -> list[Row]:
    outcomes = {tag: driver.outcome(tag, ANSWER) for tag in tags}
    who = f"{driver.name}: {n} at once"
    complete = [o for o in outcomes.values() if o.complete and o.done]
    rows = [
        report.exactly(NAME, f"{who}: complete answers", len(complete), "answers", n, backend=backend),
        report.at_most(NAME, f"{who}: first visible reply, p95",
                       percentile([(o.first or ended) - o.sent for o in outcomes.values()], 95) * 1000, "ms", 50,
                       backend=backend),
        report.info(NAME, f"{who}: the answer's first words, p95",
                    percentile([(o.words or ended) - o.sent for o in outcomes.values()], 95) * 1000, "ms",
                    backend=backend, note="LLM: first token at 500 ms"),
        report.at_most(NAME, f"{who}: bot CPU per answer", cpu / n * 1000, "ms", 5, backend=backend),
        report.at_most(NAME, f"{who}: edits of one message in any second (final excluded), max",
                       max(_max_in_window(o.edits[:-1]) for o in outcomes.values()), "edits", 1, backend=backend),
    ]
    sent = [o.sent for o in outcomes.values()]
    rows.append(report.info(NAME, f"{who}: commands sent within", (max(sent) - min(sent)) * 1000, "ms", backend=backend))
    rows += _pace(who, backend, [o.first for o in outcomes.values()], "first visible replies")
    if complete:
        rows.insert(1, report.at_most(NAME, f"{who}: slowest complete answer", max((o.done or 0) - o.sent for o in complete),
                                      "s", 1.5, backend=backend))
    lags = [(o.done or 0) - ends[tag] for tag, o in outcomes.items() if tag in ends and o.done]
    if lags:
        rows.append(report.at_most(NAME, f"{who}: final edit after the last token, p95", percentile(lags, 95) * 1000,
                                   "ms", 50, backend=backend))
    if driver.name == "discord":
        rows.append(report.at_most(NAME, f"{who}: calls against the global limit in any second, max",
                                   _max_in_window(driver.global_calls(started, ended)), "calls", 50, backend=backend))
    else:
        acks = [o.ack or 0.0 for o in outcomes.values()]
        rows += [
            report.at_most(NAME, f"{who}: acknowledgement, p95", percentile(acks, 95) * 1000, "ms", 100, backend=backend),
            report.exactly(NAME, f"{who}: acknowledgements past 3 s", sum(1 for a in acks if a > 3), "acks", 0,
                           backend=backend),
        ]
        rows += _pace(who, backend, [o.sent + o.ack for o in outcomes.values() if o.ack is not None], "acknowledgements")
    return rows


def _pace(who: str, backend: str, shown: list[float | None], what: str) -> list[Row]:
    """How fast the bot gets through a burst's commands, one after another: when they all arrive
    within a few milliseconds, the p95 of `what` is about 0.95 × N × this pace, so this figure is
    what bounds it (a p95 of 50 ms at 200 at once needs one every 0.26 ms)."""
    times = sorted(t for t in shown if t is not None)
    low, high = len(times) // 20, len(times) - 1 - len(times) // 20  # the 5th to the 95th: not the stragglers
    if high <= low:
        return []
    return [report.info(NAME, f"{who}: {what}, one every", (times[high] - times[low]) / (high - low) * 1000, "ms",
                        backend=backend, note="the bot's pace through the burst")]


async def run(quick: bool, backends: list[str]) -> list[Row]:
    rows: list[Row] = []
    for backend in backends:
        for kind in (DiscordDriver, SlackDriver):
            rows += await measure(kind, backend, 5 if quick else 200, [10] if quick else [100, 200])
    return rows
