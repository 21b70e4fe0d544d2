"""The operator's controls: take GPTs down and restore them, ban and unban creators, read reports.

    gptstore gpts takedown <slug> --reason "…"     gptstore gpts restore <slug>
    gptstore creators ban <account> --reason "…"   gptstore creators unban <account>
    gptstore creators list                         gptstore reports list [--all]   gptstore reports close <id>

Why these write straight to the database: the bot reads takedowns and bans from it on every
request, so a change here holds on the next request of every replica, with nothing to restart
or notify. The creator learns why where they look at their GPT (`/gpt mine`, `/gpt info`, and
the refusal when they use it): this command has no platform connection to DM them from.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, update
from sqlmodel import col, select

from bot.cli import ConfigOpt, console, err, settings_or_exit
from bot.cli_gpts import _with_db
from bot.cli_gpts import app as gpts_app

creators_app = typer.Typer(help="Creators: list, ban and unban.", no_args_is_help=True)
reports_app = typer.Typer(help="What members reported with /gpt report.", no_args_is_help=True)
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why; the creator is shown this.")]


def register(app: typer.Typer) -> None:
    app.add_typer(creators_app, name="creators")
    app.add_typer(reports_app, name="reports")


def _run(config: Any, work: Any) -> Any:
    settings = settings_or_exit(config)
    return asyncio.run(_with_db(settings, work))


def _fail(message: str) -> None:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


async def _gpt(session: Any, slug: str) -> Any:
    from store.models import Gpt

    return (await session.execute(select(Gpt).where(Gpt.slug == slug.strip().lower()))).scalar_one_or_none()


@gpts_app.command("takedown")
def takedown(slug: str, reason: Reason, config: ConfigOpt = None) -> None:
    """Hide a GPT everywhere: it stops answering (open threads too) and earns nothing."""
    from store import operator

    if not reason.strip():
        _fail("Give a --reason: the creator is shown it.")

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.session() as session:
            gpt = await _gpt(session, slug)
            if gpt is not None:
                await operator.take_down(session, gpt, reason.strip())
            return gpt

    gpt = _run(config, work)
    if gpt is None:
        _fail(f"No GPT with the slug {slug!r} (`gptstore gpts list` shows them).")
    console.print(f"Took down “{gpt.name}” ({gpt.slug}). It is hidden and silent on every replica from the next "
                  "request; its creator sees the reason in /gpt mine.")


@gpts_app.command("restore")
def restore(slug: str, config: ConfigOpt = None) -> None:
    """Undo a takedown."""
    from store import operator

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.session() as session:
            gpt = await _gpt(session, slug)
            if gpt is not None:
                await operator.restore(session, gpt)
            return gpt

    gpt = _run(config, work)
    if gpt is None:
        _fail(f"No GPT with the slug {slug!r}.")
    console.print(f"Restored “{gpt.name}” ({gpt.slug}).")


def _ban(account_ref: str, reason: str | None, config: Any) -> None:
    from store import operator

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.session() as session:
            account = await operator.find_account(session, account_ref)
            if account is not None:
                await operator.set_banned(session, account, reason)
            return account

    account = _run(config, work)
    if account is None:
        _fail(f"No single account matches {account_ref!r}: use its id from `gptstore creators list`, "
              "or platform:user_id.")
    if reason is None:
        console.print(f"Unbanned {account.display_name} (account {account.id}).")
    else:
        console.print(f"Banned {account.display_name} (account {account.id}): their GPTs are hidden and silent, "
                      "and they cannot publish.")


@creators_app.command("ban")
def ban(account: str, reason: Reason, config: ConfigOpt = None) -> None:
    """Ban a creator (by account id, platform:user_id or unique name): their GPTs vanish, they cannot publish."""
    if not reason.strip():
        _fail("Give a --reason: the creator is shown it.")
    _ban(account, reason.strip(), config)


@creators_app.command("unban")
def unban(account: str, config: ConfigOpt = None) -> None:
    """Lift a ban."""
    _ban(account, None, config)


@creators_app.command("list")
def list_creators(config: ConfigOpt = None) -> None:
    """Accounts that made GPTs, with their GPT count and ban."""
    from store.models import Account, Gpt

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.reader() as session:
            rows = await session.execute(
                select(Account, func.count(col(Gpt.id))).join(Gpt, col(Gpt.creator_id) == Account.id)
                .group_by(col(Account.id)).order_by(col(Account.id))
            )
            return rows.all()

    table = Table("account", "name", "GPTs", "banned")
    for account, count in _run(config, work):
        banned = f"{account.banned_at:%Y-%m-%d}: {account.ban_reason}" if account.banned_at else ""
        table.add_row(str(account.id), account.display_name, str(count), banned)
    console.print(table)


@reports_app.command("list")
def list_reports(config: ConfigOpt = None, all_: Annotated[bool, typer.Option("--all", help="Closed ones too.")] = False) -> None:
    """Reports members filed, oldest first."""
    from store import operator

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.reader() as session:
            return await operator.reports(session, include_closed=all_)

    found = _run(config, work)
    if not found:
        console.print("No open reports.")
        return
    table = Table("id", "date", "gpt", "reporter", "reason", "status")
    for report, gpt, account in found:
        status = report.status + (" (taken down)" if gpt.taken_down_at else "")
        table.add_row(str(report.id), f"{report.created_at:%Y-%m-%d %H:%M}", f"{gpt.name} ({gpt.slug})",
                      account.display_name, report.reason, status)
    console.print(table)


@reports_app.command("close")
def close_report(report_id: int, config: ConfigOpt = None) -> None:
    """Mark a report as handled."""
    from store.models import Report

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.session() as session:
            result = await session.execute(
                update(Report).where(Report.id == report_id).values(status="closed")  # type: ignore[arg-type]
            )
            return result.rowcount  # type: ignore[attr-defined]

    if not _run(config, work):
        _fail(f"No report {report_id}.")
    console.print(f"Closed report {report_id}.")
