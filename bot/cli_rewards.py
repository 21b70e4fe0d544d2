"""`gptstore rewards …` and `gptstore scheduler`: the operator's side of creator rewards.

`close` is safe to run from cron, by hand, or at the same time as the bot's scheduler: the
database lets one close through and the others report that the period is already closed.
Test hook (used by tests/test_billing_races.py to race and to kill a close): with
GPTSTORE_TEST_CLOSE_PAUSE=<seconds>, a close sleeps inside its transaction just before commit,
after touching the file named by GPTSTORE_TEST_CLOSE_READY if set.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from bot.cli import ConfigOpt, console, err, settings_or_exit
from config import Settings

app = typer.Typer(help="Creator rewards: periods, closes, revenue, exports and the ledger.", no_args_is_help=True)
PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="A period id, current, previous, or a date in it (2026-11).")]


def _run(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        from store.db import Database, make_engine
        from store.migrate import upgrade

        db = Database(make_engine(settings.database_url, lock_timeout=settings.database_lock_timeout))
        try:
            if settings.is_sqlite:
                await upgrade(db.engine)
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _rules(settings: Settings):  # type: ignore[no-untyped-def]
    from billing.close import Rules

    return Rules.from_settings(settings)


async def _period(db: Any, settings: Settings, ref: str) -> Any:
    from billing.periods import find_period
    from store.models import utcnow

    async with db.session() as session:
        try:
            return await find_period(session, ref, settings.rewards_period_cron, settings.rewards_currency, utcnow())
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None


def _money(micros: int, settings: Settings) -> str:
    from billing.money import fmt

    return fmt(micros, settings.rewards_currency)


def print_plan(plan: Any, settings: Settings, *, title: str) -> None:
    """The full split: every figure needed to check it by hand."""
    from billing.periods import Bounds

    bounds = Bounds(plan.starts_at, plan.ends_at)
    console.print(f"[bold]{title}[/bold] — period #{plan.period_id}: {bounds.start:%Y-%m-%d %H:%M} → {bounds.end:%Y-%m-%d %H:%M} UTC")
    rules = plan.rules
    console.print(
        f"pool {_money(plan.pool, settings)} = fixed {_money(rules.fixed_pool, settings)} + "
        f"{rules.revenue_share_bps / 100:g}% of revenue {_money(max(plan.revenue, 0), settings)}; "
        f"eligible points {plan.total_points}; cap {rules.user_cap} per person per GPT; "
        f"minimum payout {_money(rules.min_payout, settings)}"
    )
    table = Table("creator", "id", "in split", "points", "share", "carried in", "payout", "carried out")
    for line in plan.creators:
        table.add_row(
            line.name, str(line.account_id), "yes" if line.eligible else f"no ({line.reason})", str(line.points),
            _money(line.share, settings), _money(line.carried_in, settings), _money(line.payout, settings),
            _money(line.carried_out, settings),
        )
    table.add_row("total", "", "", str(sum(line.points for line in plan.creators)), _money(plan.allocated, settings),
                  _money(sum(line.carried_in for line in plan.creators), settings), _money(plan.paid, settings),
                  _money(plan.carried, settings))
    console.print(table)
    console.print(f"allocated {_money(plan.allocated, settings)} · returned to the operator {_money(plan.returned, settings)} "
                  f"· paid {_money(plan.paid, settings)} · carried over {_money(plan.carried, settings)}")
    for note in plan.notes:
        console.print(f"note: {note}")


def _test_pause() -> Any:
    pause = float(os.environ.get("GPTSTORE_TEST_CLOSE_PAUSE") or 0)
    ready = os.environ.get("GPTSTORE_TEST_CLOSE_READY")
    if not pause:
        return None

    async def hold() -> None:
        if ready:
            await asyncio.to_thread(Path(ready).write_text, str(os.getpid()), encoding="utf-8")
        await asyncio.sleep(pause)

    return hold


@app.command("close")
def close(
    config: ConfigOpt = None,
    period: Annotated[str | None, typer.Option("--period", "-p", help="Close this period only (default: every ended one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the full split; write nothing.")] = False,
) -> None:
    """Close ended periods (all of them, oldest first, or one), or show a dry run."""
    from billing.close import AlreadyClosed, CloseRefused, close_due, close_period
    from billing.close import dry_run as plan_only

    settings = settings_or_exit(config)
    rules = _rules(settings)

    async def work(db: Any) -> int:
        if dry_run:
            target = await _period(db, settings, period or "current")
            print_plan(await plan_only(db, rules, target.id), settings, title="Dry run")
            console.print("Dry run: nothing was written.")
            return 0
        if period is None:
            plans = await close_due(db, rules, settings.rewards_period_cron, before_commit=_test_pause())
            for plan in plans:
                print_plan(plan, settings, title="Closed")
            console.print(f"Closed {len(plans)} period(s)." if plans else "Nothing to close: no ended period is open.")
            return 0
        target = await _period(db, settings, period)
        try:
            plan = await close_period(db, rules, target.id, before_commit=_test_pause())
        except CloseRefused as exc:
            console.print(f"Not closed: {exc}.")
            return 0 if isinstance(exc, AlreadyClosed) else 1
        print_plan(plan, settings, title="Closed")
        return 0

    raise typer.Exit(_run(settings, work))


@app.command("status")
def status(config: ConfigOpt = None) -> None:
    """The rules, the current period so far, periods waiting to close, recent closes, ledger checks."""
    from billing import ledger, payouts
    from billing.close import plan_close
    from store.models import utcnow
    from store.rewards import PeriodStatus, RewardClose, RewardPeriod

    settings = settings_or_exit(config)
    rules = _rules(settings)
    console.print(
        f"currency {rules.currency} · period cron '{settings.rewards_period_cron}' (UTC) · fixed pool "
        f"{_money(rules.fixed_pool, settings)} · revenue share {rules.revenue_share_bps / 100:g}% · cap {rules.user_cap} "
        f"· minimum payout {_money(rules.min_payout, settings)} · regions {', '.join(rules.regions) or 'all'} · "
        f"payout key {'set' if settings.rewards_payout_key else 'not set (exports carry masks only)'}"
    )

    async def work(db: Any) -> None:
        current = await _period(db, settings, "current")
        async with db.reader() as session:
            plan = await plan_close(session, current, rules)
            due = (await session.execute(select(RewardPeriod).where(
                RewardPeriod.status == PeriodStatus.OPEN, col(RewardPeriod.ends_at) <= utcnow()
            ))).scalars().all()
            closes = (await session.execute(
                select(RewardPeriod, RewardClose).join(RewardClose, RewardClose.period_id == RewardPeriod.id)  # type: ignore[arg-type]
                .order_by(col(RewardPeriod.starts_at).desc()).limit(6)
            )).tuples().all()
            broken = await ledger.unbalanced(session)
            total = sum((await ledger.balances(session)).values())
            shared = await payouts.shared_destinations(session)
        print_plan(plan, settings, title="Current period so far")
        console.print(f"periods ended and not closed yet: {len(due)}" + (" (run `gptstore rewards close`)" if due else ""))
        table = Table("period", "from", "to", "pool", "allocated", "paid", "carried", "closed at")
        for period, closed in closes:
            table.add_row(str(period.id), f"{period.starts_at:%Y-%m-%d %H:%M}", f"{period.ends_at:%Y-%m-%d %H:%M}",
                          _money(closed.pool_micros, settings), _money(closed.allocated_micros, settings),
                          _money(closed.paid_micros, settings), _money(closed.carried_micros, settings),
                          f"{closed.closed_at:%Y-%m-%d %H:%M}")
        console.print(table)
        console.print(f"ledger: {len(broken)} unbalanced transaction(s); all balances sum to {total}")
        for masked, count in shared:
            console.print(f"[yellow]one payout destination ({masked}) is shared by {count} accounts[/yellow]")

    _run(settings, work)


@app.command("add-revenue")
def add_revenue(
    amount: Annotated[str, typer.Argument(help="The amount, such as 1250.00 (negative to correct an error).")],
    period: PeriodOpt,
    note: Annotated[str, typer.Option("--note", help="Where the revenue came from.")] = "",
    config: ConfigOpt = None,
) -> None:
    """Record revenue for an open period; its share joins that period's pool at the close."""
    from billing import ledger
    from billing.money import Money, MoneyError
    from store.rewards import PeriodStatus, RevenueRecord, RewardPeriod

    settings = settings_or_exit(config)
    try:
        money = Money.parse(amount, settings.rewards_currency)
    except MoneyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def work(db: Any) -> int:
        target = await _period(db, settings, period)
        async with db.session() as session:
            await ledger.lock_money(session)  # not while a close reads the revenue
            row = await session.get(RewardPeriod, target.id, populate_existing=True)
            if row is None or row.status != PeriodStatus.OPEN:
                err.print(f"[red]Period #{target.id} is closed; revenue can only be added to an open period.[/red]")
                return 2
            session.add(RevenueRecord(period_id=target.id, amount_micros=money.micros, currency=money.currency, note=note))
        console.print(f"Recorded {money} for period #{target.id}.")
        return 0

    raise typer.Exit(_run(settings, work))


@app.command("export")
def export(
    period: PeriodOpt,
    format_: Annotated[str, typer.Option("--format", "-f", help="csv or json")] = "csv",
    everyone: Annotated[bool, typer.Option("--all", help="Every statement, not only payouts.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    config: ConfigOpt = None,
) -> None:
    """One row per creator payout of a closed period, for the payment system."""
    from billing import statements

    settings = settings_or_exit(config)
    if format_ not in ("csv", "json"):
        err.print("[red]--format is csv or json[/red]")
        raise typer.Exit(2)
    key = settings.rewards_payout_key.get_secret_value() if settings.rewards_payout_key else None

    async def work(db: Any) -> tuple[Any, list[dict[str, Any]]]:
        target = await _period(db, settings, period)
        async with db.reader() as session:
            summary = await statements.close_summary(session, target.id)
            if summary is None:
                err.print(f"[red]Period #{target.id} is not closed yet; nothing to export.[/red]")
                raise typer.Exit(2)
            return summary, await statements.export_rows(session, target.id, key=key, payouts_only=not everyone)

    summary, rows = _run(settings, work)
    if format_ == "json":
        head = summary.model_dump(mode="json")
        text = json.dumps({"period": head, "rows": rows}, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["statement_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"Wrote {len(rows)} row(s) to {output}")
    else:
        sys.stdout.write(text)


@app.command("ledger")
def ledger_cmd(
    account: Annotated[str | None, typer.Option("--account", "-a", help="operator, pool:<id>, creator:<id>, payout:<id>")] = None,
    config: ConfigOpt = None,
) -> None:
    """An account's entries with the running balance, or every balance (they sum to zero)."""
    from billing import ledger

    settings = settings_or_exit(config)

    async def work(db: Any) -> Any:
        async with db.reader() as session:
            return await ledger.statement(session, account) if account else await ledger.balances(session)

    result = _run(settings, work)
    if account:
        table = Table("at", "transaction", "kind", "amount", "balance")
        for line in result:
            table.add_row(f"{line.at:%Y-%m-%d %H:%M}", line.key, line.kind, _money(line.amount, settings), _money(line.balance, settings))
        console.print(table)
        console.print(f"balance of {account}: {_money(result[-1].balance if result else 0, settings)}")
        return
    table = Table("account", "balance")
    for name, total in result.items():
        table.add_row(name, _money(total, settings))
    console.print(table)
    console.print(f"sum of all balances: {_money(sum(result.values()), settings)}")


def scheduler(config: ConfigOpt = None) -> None:
    """Run only the rewards scheduler (when `gptstore run --no-scheduler` serves elsewhere)."""
    from billing.scheduler import start_scheduler
    from store.db import Database, make_engine
    from store.migrate import upgrade

    settings = settings_or_exit(config)

    class Host:
        def __init__(self, db: Database) -> None:
            self.settings, self.db = settings, db

    async def main() -> None:
        db = Database(make_engine(settings.database_url, lock_timeout=settings.database_lock_timeout))
        if settings.is_sqlite:
            await upgrade(db.engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        closer = await start_scheduler(Host(db))
        console.print(f"rewards scheduler running ({settings.rewards_period_cron}, UTC). Ctrl-C to stop.")
        try:
            await stop.wait()
        finally:
            await closer()
            await db.dispose()

    asyncio.run(main())
