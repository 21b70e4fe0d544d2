"""Knowledge in the DM builder: files attached to a draft, listed, forgotten.

A draft lists its files in `data["knowledge"]` (id, name, size, passages, pages), so the card and
the list need no query, and publishing copies the ids onto the new version. Each file is judged by
its name and announced size before a byte is downloaded; extraction runs in a worker thread (a
PDF can take a second of CPU) and a file is written with all its passages in one transaction, or
not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from sqlalchemy import update

from bot.context import Ctx
from bot.errors import UserError
from bot.events import Attachment, FileAccessDenied, Message
from bot.i18n import N_
from bot.llm import LLMError
from bot.replies import Reply
from knowledge.extract import Unreadable, extract, kind_of
from knowledge.split import split
from store import knowledge as store_knowledge
from store.db import offloaded
from store.models import BuilderDraft

log = logging.getLogger(__name__)

LIST_WORDS = frozenset({"knowledge", "files", "connaissances", "fichiers"})
FORGET_WORDS = ("forget ", "oublier ", "oublie ")
MB = 1024 * 1024

KINDS_HINT = N_("text (.txt), Markdown (.md), PDF, HTML, CSV and Word (.docx)")
REFUSED: dict[str, str] = {
    "unsupported": N_("I cannot use **{name}**: knowledge files can be {kinds}."),
    "empty": N_("**{name}** has no text I can use: it is empty."),
    "corrupt": N_("I cannot read **{name}**: the file looks damaged. Try exporting it again."),
    "encrypted": N_("I cannot read **{name}**: it is password-protected. Attach a copy without a password."),
    "no_text": N_("**{name}** has no text I can read (a scan or images only). Attach a version with selectable text."),
}
HINT = N_("Say `knowledge` to list the files, `forget <file>` to remove one.")


def files_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data.get("knowledge", []))


def file_ids(data: dict[str, Any]) -> list[int]:
    return [int(item["id"]) for item in data.get("knowledge", [])]


def word(text: str) -> tuple[str, str] | None:
    """("list", "") for `knowledge`, ("forget", "<file>") for `forget <file>`, else None."""
    folded = text.strip().lower()
    if folded in LIST_WORDS:
        return "list", ""
    for prefix in FORGET_WORDS:
        if folded.startswith(prefix):
            return "forget", text.strip()[len(prefix):].strip()
    return None


def details(ctx: Ctx, item: dict[str, Any]) -> str:
    pages = ""
    if item.get("pages"):
        pages = ctx._(", 1 page") if item["pages"] == 1 else ctx._(", {count} pages", count=item["pages"])
    if item["passages"] == 1:
        return ctx._("{size}{pages}, 1 passage", size=_size(item["size"]), pages=pages)
    return ctx._("{size}{pages}, {passages} passages", size=_size(item["size"]), pages=pages, passages=item["passages"])


def summary(ctx: Ctx, item: dict[str, Any]) -> str:
    return f"{item['name']} ({details(ctx, item)})"


def listing(ctx: Ctx, data: dict[str, Any]) -> str:
    items = files_of(data)
    if not items:
        return ctx._("No knowledge files yet. Attach files to this DM (up to {count}) and your GPT will draw on them and cite them.",
                     count=ctx.settings.knowledge_max_files)
    lines = [ctx._("Knowledge files ({count} of at most {limit}):", count=len(items), limit=ctx.settings.knowledge_max_files)]
    lines += [f"{index}. {summary(ctx, item)}" for index, item in enumerate(items, 1)]
    lines.append(ctx._(HINT))
    return "\n".join(lines)


async def attach(ctx: Ctx, draft: BuilderDraft, files: tuple[Attachment, ...]) -> None:
    """Add each file to the draft's knowledge, or say why not; one reply per file."""
    for attachment in files:
        try:
            item = await _ingest(ctx, draft, attachment)
        except Refused as refusal:
            await ctx.send(Reply(text=ctx._(refusal.msgid, **refusal.params)))
            continue
        draft.data = {**draft.data, "knowledge": [*files_of(draft.data), item]}
        await ctx.send(Reply(text=ctx._("Added **{file}** to your GPT's knowledge: {summary}. It takes effect when you publish.",
                                        file=item["name"], summary=details(ctx, item)) + "\n" + ctx._(HINT)))


async def forget(ctx: Ctx, draft: BuilderDraft, ref: str) -> None:
    items = files_of(draft.data)
    chosen = _pick(items, ref)
    if chosen is None:
        await ctx.send(Reply(text=ctx._("No knowledge file called “{ref}”.", ref=ref[:100]) + "\n" + listing(ctx, draft.data)))
        return
    remaining = [item for item in items if item["id"] != chosen["id"]]
    draft.data = {**draft.data, "knowledge": remaining}
    with offloaded():
        async with ctx.db.session() as session:
            await session.execute(
                update(BuilderDraft).where(BuilderDraft.id == draft.id).values(data=draft.data)  # type: ignore[arg-type]
            )
            await store_knowledge.delete_unused(session, ctx.account_id, [chosen["id"]])
    await ctx.send(Reply(text=ctx._("Removed **{file}** from your GPT's knowledge.", file=chosen["name"])))


async def discard(ctx: Ctx, ids: list[int]) -> None:
    """Files a cancelled draft leaves behind that nothing else lists any more."""
    if ids:
        with offloaded():
            async with ctx.db.session() as session:
                await store_knowledge.delete_unused(session, ctx.account_id, ids)


def _pick(items: list[dict[str, Any]], ref: str) -> dict[str, Any] | None:
    ref = ref.strip().strip("*`\"“”").strip()
    if ref.isdigit() and 1 <= int(ref) <= len(items):
        return items[int(ref) - 1]
    folded = ref.lower()
    exact = [item for item in items if item["name"].lower() == folded]
    loose = [item for item in items if folded and folded in item["name"].lower()]
    if len(exact) == 1:
        return exact[0]
    return loose[0] if not exact and len(loose) == 1 else None


class Refused(UserError):
    """One file is not added; the others of the same message still are."""


async def _ingest(ctx: Ctx, draft: BuilderDraft, attachment: Attachment) -> dict[str, Any]:
    settings = ctx.settings
    name = attachment.name.strip() or "file"
    kind = kind_of(name, attachment.content_type)
    if kind is None:
        raise Refused(REFUSED["unsupported"], name=name, kinds=ctx._(KINDS_HINT))
    items = files_of(draft.data)
    if len(items) >= settings.knowledge_max_files:
        raise Refused(N_("Not added: **{name}**. This GPT already has {count} knowledge files, the most allowed. Say `forget <file>` to make room."),
                      name=name, count=len(items))
    per_file = int(settings.knowledge_max_file_mb * MB)
    if attachment.size > per_file:
        raise Refused(N_("**{name}** is {size}; a knowledge file can be at most {limit}."),
                      name=name, size=_size(attachment.size), limit=_size(per_file))
    total = int(settings.knowledge_max_total_mb * MB)
    used = sum(int(item["size"]) for item in items)
    if used + attachment.size > total:
        raise Refused(N_("Not added: **{name}** ({size}) would take this GPT's knowledge past {limit} in all ({used} used)."),
                      name=name, size=_size(attachment.size), limit=_size(total), used=_size(used))
    if attachment.fetch is None:
        raise Refused(N_("I could not download **{name}**. Please attach it again."), name=name)
    try:
        data = await attachment.fetch(per_file + 1)
    except FileAccessDenied as exc:
        log.warning("the platform refused the bot a file: %s", exc)
        raise Refused(N_("I am not allowed to read files here, so **{name}** was not added. An admin needs to reinstall the app with its file permission (files:read)."),
                      name=name) from None
    except Exception as exc:  # the platform's download: a network error, an expired link
        log.warning("download of an attachment failed: %s: %s", type(exc).__name__, exc)
        raise Refused(N_("I could not download **{name}**. Please attach it again."), name=name) from None
    if len(data) > per_file:
        raise Refused(N_("**{name}** is {size}; a knowledge file can be at most {limit}."),
                      name=name, size=_size(len(data)), limit=_size(per_file))
    digest = hashlib.sha256(data).hexdigest()
    async with ctx.db.reader() as session:
        known = await store_knowledge.files(session, [int(item["id"]) for item in items])
    if any(f.sha256 == digest for f in known):
        raise Refused(N_("**{name}** is already in this GPT's knowledge."), name=name)
    try:
        sections, passages = await asyncio.to_thread(_read, name, data, attachment.content_type)
    except Unreadable as exc:
        raise Refused(REFUSED.get(exc.reason, REFUSED["corrupt"]), name=name, kinds=ctx._(KINDS_HINT)) from None
    pages = max((p.page or 0 for p in passages), default=0) or None
    vectors = await _embed(ctx, [p.text for p in passages])
    with offloaded():  # thousands of passages and their index: not on the loop every member waits on
        async with ctx.db.session() as session:
            row = await store_knowledge.add_file(
                session, owner_id=ctx.account_id, name=name, kind=kind, size=len(data), sha256=digest, pages=pages,
                passages=[(p.text, p.heading, p.page) for p in passages], embeddings=vectors,
            )
            item = {"id": row.id, "name": row.name, "size": len(data), "passages": len(passages), "pages": pages}
            await session.execute(
                update(BuilderDraft).where(BuilderDraft.id == draft.id).values(  # type: ignore[arg-type]
                    data={**draft.data, "knowledge": [*items, item]}
                )
            )
    log.info("knowledge file %s added: %d bytes, %d sections, %d passages", row.id, len(data), sections, len(passages))
    return item


def _read(name: str, data: bytes, content_type: str) -> tuple[int, list[Any]]:
    sections = extract(name, data, content_type)
    return len(sections), split(sections)


async def _embed(ctx: Ctx, texts: list[str]) -> list[bytes] | None:
    """Embeddings for ranking by meaning, when the operator set a model; a file is still added
    (ranked by its words alone) if the endpoint fails."""
    model = ctx.settings.knowledge_embedding_model
    if not model or not texts:
        return None
    try:
        return await ctx.services.llm.embed(texts, model=model)
    except LLMError as exc:
        log.warning("embeddings unavailable, the file is ranked by its words: %s", exc)
        return None


def _size(count: int) -> str:
    if count >= MB:
        return f"{count / MB:.1f} MB"
    if count >= 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count} B"


def incoming_files(ctx: Ctx) -> tuple[Attachment, ...]:
    return ctx.event.files if isinstance(ctx.event, Message) else ()
