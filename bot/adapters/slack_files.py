"""Files people share with the bot on Slack, as the core's `Attachment`s.

A `file_share` message carries file objects: name, size and type are read from them at once, the
bytes only when the core asks (`fetch`), from `url_private_download` with the bot token of the
workspace the message came from (Slack serves private files to a token with `files:read` and to
nobody else). Slack does not say "401" to a request it will not serve: it redirects to its sign-in
page, which arrives as an HTML page with status 200. So a download is refused unless it is a 200 from
the file's own address, and an HTML body counts only when the file itself is HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import Attachment, FileAccessDenied

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)


class DownloadFailed(Exception):
    """Slack did not hand over the file's bytes (no access, a sign-in page, an error, an external file)."""


class NoFileAccess(DownloadFailed, FileAccessDenied):
    """The workspace's token may not read files: only reinstalling the app fixes it."""


async def attachments_of(event: Mapping[str, Any], client: AsyncWebClient) -> tuple[Attachment, ...]:
    """The files of a message event, with their download bound to this workspace's client (its token).

    A file object Slack trims to `{"id", "file_access": "check_file_info"}` (Slack Connect, some
    large shares) is completed with `files.info`: metadata only, no bytes."""
    out = []
    for raw in event.get("files") or ():
        file = dict(raw)
        if file.get("file_access") == "check_file_info" and file.get("id"):
            try:
                file = dict((await client.files_info(file=file["id"]))["file"])
            except SlackApiError as exc:
                log.warning("files.info failed for %s: %s", file["id"], exc.response.get("error"))
        out.append(_attachment(file, client))
    return tuple(out)


def _attachment(file: Mapping[str, Any], client: AsyncWebClient) -> Attachment:
    name = str(file.get("name") or file.get("title") or file.get("id") or "file")
    size = int(file.get("size") or 0)
    mimetype = str(file.get("mimetype") or "")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    reason = ""
    if file.get("is_external") or file.get("mode") in ("external", "tombstone", "hidden_by_limit"):
        reason = f"the file is {file.get('mode') or 'external'}, Slack holds no bytes for it"
    elif not url:
        reason = "the file object has no download address"
    return Attachment(name, size, mimetype, fetch=_downloader(url, mimetype, client, reason))


def _downloader(url: str, mimetype: str, client: AsyncWebClient, reason: str) -> Callable[[int], Awaitable[bytes]]:
    async def fetch(limit: int) -> bytes:
        if reason:
            raise DownloadFailed(reason)
        return await download(url, client.token or "", limit, mimetype=mimetype, client=client)

    return fetch


async def download(url: str, token: str, limit: int, *, mimetype: str = "", client: AsyncWebClient | None = None) -> bytes:
    """At most `limit` bytes of a private file: the core asks for one byte more than it accepts, so a
    full answer says "too big" without reading the rest. `client` lends its SSL and proxy settings, so the download goes where the API calls go."""
    if not token:
        raise DownloadFailed("no bot token for this workspace")
    headers = {"Authorization": f"Bearer {token}"}
    options: dict[str, Any] = {}
    if client is not None:
        options = {k: v for k, v in (("ssl", client.ssl), ("proxy", client.proxy)) if v is not None}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(url, headers=headers, **options) as resp:
        if resp.status != 200:
            raise DownloadFailed(f"Slack answered {resp.status} for the file")
        if resp.content_type == "text/html" and (resp.history or not mimetype.startswith("text/html")):
            raise NoFileAccess("Slack answered with a sign-in page: the token lacks files:read")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(CHUNK):
            data += chunk
            if len(data) >= limit:
                break
        return bytes(data[:limit])


__all__ = ["DownloadFailed", "NoFileAccess", "attachments_of", "download"]
