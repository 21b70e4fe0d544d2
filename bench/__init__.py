"""Benchmarks: speed, scale and memory of the bot, measured through the real core.

`python -m bench` prints a table of figures against their targets and writes
`bench/results.json`; `--quick` runs small sizes for CI. Benchmarks print figures: nothing here
is a timed test, and a missed target never fails the run.
"""

BENCHMARKS = ("overhead", "concurrency", "search", "tracking", "memory", "startup", "close", "platform", "stream",
              "knowledge")
"""Run in this order; each is a module `bench.<name>` with `async def run(quick, backends)`."""
