"""The `gptstore` command: run the bot, the console, and the operator's tools."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from config import Settings, SettingsError, load_settings

app = typer.Typer(
    help="gptstore: a GPT marketplace for Discord and Slack.", no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
config_app = typer.Typer(help="The effective settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="A TOML settings file.")]
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def settings_or_exit(config: Path | None) -> Settings:
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    from bot.logs import configure

    configure(settings.log_level, settings.secret_values())
    return settings


@app.command("console")
def console_(
    config: ConfigOpt = None,
    script: Annotated[Path | None, typer.Option("--script", help="Run these lines, then exit.")] = None,
    user: Annotated[str, typer.Option("--as", help="Who you are at the start.")] = "alice",
) -> None:
    """Try the store in the terminal: one workspace, channels, DMs and threads."""
    from bot.adapters.console import ConsoleAdapter, split_script
    from bot.bootstrap import bootstrap

    settings = settings_or_exit(config)

    async def main() -> None:
        bot = await bootstrap(settings)
        adapter = ConsoleAdapter(bot.core, out=console, user=user)
        try:
            if script is not None:
                await adapter.run_lines(split_script(script.read_text(encoding="utf-8")))
                return
            console.print("[bold]gptstore console[/bold] — type :help for console commands, /gpt help for the store.")
            if notice := bot.services.extras.get("llm_notice"):  # the demo model, or no model at all
                console.print(bot.services.tr(settings.default_locale, notice), style="yellow", markup=False)
            loop = asyncio.get_running_loop()
            while True:
                try:
                    line = await loop.run_in_executor(None, lambda: console.input(adapter.prompt() + " "))
                except (EOFError, KeyboardInterrupt):
                    break
                if not await adapter.line(line):
                    break
        finally:
            await bot.aclose()

    asyncio.run(main())



@app.command()
def run(
    config: ConfigOpt = None,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="Leave reward closes to another process.")] = False,
) -> None:
    """Start every adapter whose credentials are configured."""
    from bot.runner import run_adapters

    settings = settings_or_exit(config)
    code = asyncio.run(run_adapters(settings, scheduler=not no_scheduler, out=console))
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, revision: str = "head") -> None:
    """Apply every pending migration."""
    from store.db import make_engine
    from store.migrate import current, upgrade

    settings = settings_or_exit(config)

    async def main() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine, revision)
            return await current(engine)
        finally:
            await engine.dispose()

    console.print(f"Database at revision {asyncio.run(main())}.")


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Show the schema revision of the database."""
    from store.db import make_engine
    from store.migrate import current

    settings = settings_or_exit(config)

    async def main() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            return await current(engine)
        finally:
            await engine.dispose()

    console.print(asyncio.run(main()) or "empty (run `gptstore db upgrade`)")


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective settings, secrets masked."""
    settings = settings_or_exit(config)
    table = Table("setting", "value")
    for name, value in settings.masked().items():
        table.add_row(f"GPTSTORE_{name.upper()}", value)
    console.print(table)


def _register_more() -> None:
    from bot import cli_gpts, cli_operator

    app.add_typer(cli_gpts.app, name="gpts")
    cli_operator.register(app)  # also adds `gpts takedown|restore`
    from bot import cli_rewards

    app.add_typer(cli_rewards.app, name="rewards")
    app.command("scheduler")(cli_rewards.scheduler)
    from bot import cli_discord

    app.add_typer(cli_discord.app, name="discord")


def main() -> None:
    _register_more()
    app()


if __name__ == "__main__":
    main()
