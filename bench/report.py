"""One way for every benchmark to state a figure, print the table and save `bench/results.json`.

A row says what was measured, the value, its unit, the target as text and whether it was met.
`met` is None for figures that have no target (a size, a count): they are context for the
figures that do. Missing a target never fails the run (CI machines are slow); only a benchmark
that crashes does.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results.json")


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    figure: str
    value: float
    unit: str
    target: str
    met: bool | None
    backend: str = ""
    note: str = ""


def at_most(benchmark: str, figure: str, value: float, unit: str, limit: float, *, backend: str = "",
            note: str = "") -> Row:
    return Row(benchmark, figure, value, unit, f"≤ {_num(limit)}", value <= limit, backend, note)


def at_least(benchmark: str, figure: str, value: float, unit: str, floor: float, *, backend: str = "",
             note: str = "") -> Row:
    return Row(benchmark, figure, value, unit, f"≥ {_num(floor)}", value >= floor, backend, note)


def exactly(benchmark: str, figure: str, value: float, unit: str, wanted: float, *, backend: str = "",
            note: str = "") -> Row:
    return Row(benchmark, figure, value, unit, f"= {_num(wanted)}", value == wanted, backend, note)


def info(benchmark: str, figure: str, value: float, unit: str, *, backend: str = "", note: str = "") -> Row:
    return Row(benchmark, figure, value, unit, "", None, backend, note)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render(rows: Iterable[Row], *, console: Console | None = None, title: str = "gptstore benchmarks") -> None:
    table = Table(title=title, title_justify="left")
    for name, justify in (("benchmark", "left"), ("db", "left"), ("figure", "left"), ("value", "right"),
                          ("unit", "left"), ("target", "left"), ("met", "center")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        mark = "–" if row.met is None else ("[green]yes[/green]" if row.met else "[red]NO[/red]")
        table.add_row(row.benchmark, row.backend, row.figure + (f" [dim]({row.note})[/dim]" if row.note else ""),
                      _num(row.value), row.unit, row.target, mark)
    (console or Console()).print(table)


def machine() -> dict[str, str | int]:
    """What the figures were measured on (they mean little without it)."""
    import os

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"cpu": model or platform.processor(), "cores": os.cpu_count() or 0,
            "python": platform.python_version(), "system": platform.platform(terse=True), "load": load}


def save(rows: Iterable[Row], path: Path = RESULTS) -> None:
    """`results.json`: a list of rows (figure, value, unit, target, met, benchmark, backend, note)."""
    path.write_text(json.dumps([asdict(row) for row in rows], indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
