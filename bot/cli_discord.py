"""`gptstore discord`: the operator's Discord tools (the invite URL)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import typer

from bot.cli import ConfigOpt, console, err, settings_or_exit

app = typer.Typer(help="Discord.", no_args_is_help=True)


def client_id_from_token(token: str) -> str | None:
    """A bot token starts with the bot's user id in base64, and a bot's user id is its application id."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if decoded.isdigit() else None


@app.command("invite-url")
def invite_url(
    config: ConfigOpt = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="The application id (default: read from GPTSTORE_DISCORD_TOKEN).")
    ] = None,
) -> None:
    """Print the URL a server admin opens to add the bot: scopes bot + applications.commands, and only
    the permissions it uses (view channels, send messages, send in threads, create public threads,
    embed links, read message history)."""
    from bot.adapters.discord_commands import invite_url as make_url

    if client_id is None:
        settings = settings_or_exit(config)
        token = settings.discord_token.get_secret_value() if settings.discord_token else ""
        client_id = client_id_from_token(token) if token else None
        if client_id is None:
            err.print("[red]Give the application id with --client-id (Developer Portal → your app → General "
                      "Information), or set GPTSTORE_DISCORD_TOKEN.[/red]")
            raise typer.Exit(2)
    if not client_id.isdigit():
        err.print("[red]--client-id is the application's numeric id.[/red]")
        raise typer.Exit(2)
    console.print(make_url(client_id), soft_wrap=True, markup=False)
