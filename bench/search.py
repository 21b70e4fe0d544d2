"""Search: `/gpt search` and autocomplete through the core, as the catalogue grows ×10.

Queries mix what people type: a very common word (matches a large share of the catalogue), two
words, a rare word, a word that matches nothing, and autocomplete prefixes as a name is typed
letter by letter, starting with nothing typed. Targets: search p99 ≤ 20 ms, autocomplete p99 ≤ 10
ms at 100 000 GPTs, and both flat-ish as the catalogue grows (the ratio of p99s is printed).
"""

from __future__ import annotations

import itertools
import random
import time

from bench import report
from bench.harness import PLATFORM, WORKSPACE, BenchOutbox, Tally, bench_settings, running_bot
from bench.report import Row, percentile
from bench.seed import TOPICS, seeded_store, vocabulary
from bot.events import Actor, Autocomplete, Command, Place

NAME = "search"
_ids = itertools.count(1)


def search_queries(rng: random.Random, count: int) -> list[str]:
    words = vocabulary()
    common, middle, rare = TOPICS[:10], words[100:1000], words[2000:]
    makers = [
        lambda: rng.choice(common),
        lambda: f"{rng.choice(common)} {rng.choice(common)}",
        lambda: rng.choice(middle),
        lambda: f"{rng.choice(common)} {rng.choice(middle)}",
        lambda: rng.choice(rare),
        lambda: "zzyzx unheardof",
    ]
    return [makers[i % len(makers)]() for i in range(count)]


def prefixes(rng: random.Random, count: int) -> list[str]:
    """What autocomplete receives while someone types a GPT's name: nothing yet (Discord asks as
    soon as the option is focused, and shows that list first), then 1, 2, 3… letters."""
    words = vocabulary()
    typed: list[str] = []
    while len(typed) < count:
        name = f"{rng.choice(words[:300])} {rng.choice(words[:2000])}"
        typed += [name[:n] for n in range(0, len(name) + 1)]
    return typed[:count]


async def run(quick: bool, backends: list[str]) -> list[Row]:
    sizes = [1_000, 10_000] if quick else [10_000, 100_000]
    count = 100 if quick else 1_000
    rows: list[Row] = []
    for backend in backends:
        p99s: dict[str, list[float]] = {"search": [], "autocomplete": []}
        for size in sizes:
            async with seeded_store(backend, gpts=size) as (store, _), \
                    running_bot(bench_settings(store.url, None)) as app:
                rng = random.Random(size)
                actor = Actor(PLATFORM, "user1", "User 1")
                place = Place(WORKSPACE, "c1", workspace_name="Bench")
                tally = Tally()
                searched: list[float] = []
                for i, query in enumerate(search_queries(rng, count + 20)):
                    event = Command(actor, place, f"s{next(_ids)}-{time.monotonic_ns()}", "gpt", "search",
                                    {"query": query})
                    started = time.perf_counter()
                    await app.core.handle(event, BenchOutbox(tally, started))
                    if i >= 20:
                        searched.append(time.perf_counter() - started)
                completed: list[float] = []
                for i, typed in enumerate(prefixes(rng, count + 20)):
                    request = Autocomplete(actor, place, "", "gpt", "ask", "gpt", typed)
                    started = time.perf_counter()
                    await app.core.autocomplete(request)
                    if i >= 20:
                        completed.append(time.perf_counter() - started)
            label = f"{size:,} GPTs".replace(",", " ")
            for kind, times, limit in (("search", searched, 20), ("autocomplete", completed, 10)):
                p99 = percentile(times, 99) * 1000
                p99s[kind].append(p99)
                rows += [
                    report.info(NAME, f"{kind} p50, {label}", percentile(times, 50) * 1000, "ms", backend=backend),
                    report.at_most(NAME, f"{kind} p99, {label}", p99, "ms", limit, backend=backend),
                ]
        growth = sizes[-1] // sizes[0]
        for kind, values in p99s.items():
            rows.append(report.at_most(NAME, f"{kind} p99 growth, catalogue ×{growth}", values[-1] / values[0], "×", 2,
                                       backend=backend, note="flat-ish"))
    return rows
