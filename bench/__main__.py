"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print the table, save results.

Each benchmark runs in a fresh event loop, on SQLite and, when GPTSTORE_BENCH_DATABASE_URL is
set, on PostgreSQL too. A missed target is printed, never fatal (the exit status is 0); a
benchmark that crashes makes the exit status 1, because then nothing was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time
import traceback

from rich.console import Console

from bench import BENCHMARKS, report
from bench.harness import backends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute (CI)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    logging.basicConfig(level=logging.ERROR)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only]
    machine = report.machine()
    console.print(f"[bold]gptstore benchmarks[/bold] {'(quick) ' if args.quick else ''}on {machine['cpu']}, "
                  f"{machine['cores']} cores, Python {machine['python']}, load average {machine['load']}; "
                  f"stores: {', '.join(backends())}")
    rows: list[report.Row] = []
    crashed: list[str] = []
    started = time.perf_counter()
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        began = time.perf_counter()
        try:
            got = asyncio.run(module.run(args.quick, backends()))
        except Exception:
            crashed.append(name)
            console.print(f"[red]benchmark {name} crashed:[/red]")
            console.print(traceback.format_exc(), markup=False)
            continue
        rows += got
        report.render(got, console=console, title=f"{name} ({time.perf_counter() - began:.1f} s)")
    if len(chosen) > 1:
        report.render(rows, console=console, title="all benchmarks")
    report.save(rows)
    missed = sum(1 for row in rows if row.met is False)
    console.print(f"{len(rows)} figures, {missed} targets missed, {time.perf_counter() - started:.1f} s; "
                  f"saved {report.RESULTS}")
    if crashed:
        console.print(f"[red]crashed: {', '.join(crashed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
