"""Close: the reward close of one period over many invocations, and its memory.

The store holds N invocations in one monthly period (1 000 GPTs, 2 000 users, 200 creators all
opted in); the close (billing.close.close_period: score, split, statements, ledger, one
transaction) runs in a child process that reports its time and how much its peak RSS grew.
Measured at sizes ×10 apart: time must grow no worse than linearly, memory stay flat.
Targets: 1 M invocations on SQLite ≤ 10 s, 10 M on PostgreSQL ≤ 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, date, datetime

from sqlalchemy import insert

from bench import report
from bench.harness import bench_settings, running_bot
from bench.memory import _status
from bench.report import Row
from bench.seed import seed_invocations, seeded_store
from billing.close import Rules, close_period
from billing.periods import Bounds, ensure_period
from store.db import Database, make_engine
from store.rewards import PayoutSettings

NAME = "close"
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
GPTS, USERS, CREATORS = 1_000, 2_000, 200
TARGETS = {"sqlite": (1_000_000, 10.0), "postgres": (10_000_000, 60.0)}


async def prepare(database_url: str, invocations: int) -> int:
    """Seed the store; returns the period's id."""
    async with running_bot(bench_settings(database_url, None)) as app:
        await seed_invocations(app.db, count=invocations, gpts=GPTS, users=USERS, start=date(2025, 1, 2), days=28)
        async with app.db.session() as session:
            await session.execute(insert(PayoutSettings), [
                {"account_id": USERS + 1 + i, "opted_in": True, "region": "", "destination_mask": "",
                 "destination_hash": "", "destination_cipher": None, "updated_at": START}
                for i in range(CREATORS)
            ])
            period = await ensure_period(session, Bounds(START, END), "USD")
            assert period.id is not None
            return period.id


async def child(database_url: str, period_id: int) -> dict[str, float]:
    settings = bench_settings(database_url, None)
    db = Database(make_engine(database_url))
    try:
        before = _status("VmHWM")
        started = time.perf_counter()
        plan = await close_period(db, Rules.from_settings(settings), period_id, now=datetime(2025, 3, 1, tzinfo=UTC))
        elapsed = time.perf_counter() - started
        return {"seconds": elapsed, "grew": _status("VmHWM") - before, "creators": len(plan.creators),
                "points": plan.total_points, "paid": plan.paid}
    finally:
        await db.dispose()


async def run(quick: bool, backends: list[str]) -> list[Row]:
    rows: list[Row] = []
    for backend in backends:
        target_size, limit = TARGETS[backend]
        sizes = [5_000, 50_000] if quick else [target_size // 10, target_size]
        times: list[float] = []
        for size in sizes:
            async with seeded_store(backend, gpts=GPTS, users=USERS, creators=CREATORS) as (store, _):
                period_id = await prepare(store.url, size)
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.close", "--database", store.url, "--period", str(period_id),
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"the close child failed ({proc.returncode})")
                got = json.loads(out.decode().strip().splitlines()[-1])
            times.append(got["seconds"])
            label = f"{size:,} invocations".replace(",", " ")
            rows.append(report.at_most(NAME, f"close, {label}", got["seconds"], "s", limit, backend=backend)
                        if size == target_size else report.info(NAME, f"close, {label}", got["seconds"], "s",
                                                                backend=backend))
            rows.append(report.info(NAME, f"peak RSS growth during the close, {label}", got["grew"], "MB",
                                    backend=backend, note=f"{got['creators']} creators, {got['points']} points"))
        rows.append(report.at_most(NAME, f"time growth, invocations ×{sizes[-1] // sizes[0]}", times[-1] / times[0],
                                   "×", sizes[-1] / sizes[0], backend=backend, note="linear or better"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--period", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(child(args.database, args.period))))


if __name__ == "__main__":
    main()
