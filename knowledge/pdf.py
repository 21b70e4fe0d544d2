"""PDF to one section per page, so that an answer can cite "p. 4".

pypdf reads the text layer; a scan has none, and we say so ("no_text") rather than store nothing.
Uploaded PDFs are untrusted input, so everything pypdf raises on a bad file becomes "corrupt"
(pypdf signals malformed input with many exception types, not one), its limits on decompression
and object counts stay on, and we read at most MAX_PAGES pages and MAX_CHARS characters.

pypdf logs a warning for every oddity it repairs, which on a damaged upload is dozens of lines in
the bot's log for nothing the operator can act on (its "errors" too: a font encoding it cannot map). We
raise its logger to CRITICAL once, for the process, rather than around each call: extraction runs in
worker threads, and saving and restoring a logger's level from several threads at once can leave it
wrong either way. What went wrong still reaches our own log at DEBUG.

Headings come from the PDF's outline (bookmarks) when it has one: each page takes the path of the
first bookmark that points into it, or else of the last one before it.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from knowledge.section import Section, Unreadable, heading_path

if TYPE_CHECKING:
    from pypdf import PdfReader

log = logging.getLogger(__name__)

MAX_PAGES = 2_000
"""Pages read from one PDF; a longer one keeps its first MAX_PAGES pages."""
MAX_CHARS = 20_000_000
"""Characters read from one PDF (about 5 000 dense pages); reading stops at the page that passes it."""
MAX_OUTLINE_ENTRIES = 10_000

_HEADER_WINDOW = 1024
"""A PDF's "%PDF-" header must start within its first 1 024 bytes (ISO 32000, as readers apply it)."""


def sections_of(data: bytes) -> list[Section]:
    """The text of each page with its 1-based number; raises Unreadable for what cannot be read."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise Unreadable("corrupt")
    _quiet_pypdf()
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as error:
                # An encryption we cannot undo (an unknown handler) needs more than no password.
                log.debug("cannot decrypt PDF: %s", error)
                raise Unreadable("encrypted") from None
            if opened == PasswordType.NOT_DECRYPTED:
                raise Unreadable("encrypted")
        count = len(reader.pages)
    except Unreadable:
        raise
    except Exception as error:  # any pypdf failure means a bad file
        log.debug("unreadable PDF: %s: %s", type(error).__name__, error)
        raise Unreadable("corrupt") from None
    if count == 0:
        raise Unreadable("empty")

    headings = _page_headings(reader, min(count, MAX_PAGES))
    sections: list[Section] = []
    failures = 0
    total = 0
    for index in range(min(count, MAX_PAGES)):
        try:
            text = reader.pages[index].extract_text()
        except Exception as error:  # one bad page need not lose the rest
            log.debug("unreadable PDF page %d: %s: %s", index + 1, type(error).__name__, error)
            failures += 1
            continue
        if text.strip():
            sections.append(Section(text, headings.get(index, ""), index + 1))
            total += len(text)
            if total > MAX_CHARS:
                break
    if not sections:
        if failures == min(count, MAX_PAGES):
            raise Unreadable("corrupt")
        raise Unreadable("no_text", pages=count)
    return sections


def _page_headings(reader: PdfReader, pages: int) -> dict[int, str]:
    """Page index → heading path, from the outline; {} when there is none or it is broken."""
    marks: list[tuple[int, str]] = []  # (page index, heading path) in outline order

    def walk(items: list[Any], parents: list[str]) -> None:
        titles = parents
        for item in items:
            if len(marks) >= MAX_OUTLINE_ENTRIES:
                return
            if isinstance(item, list):  # the children of the item just before
                walk(item, titles)
                continue
            titles = [*parents, _title(item)]
            page = reader.get_destination_page_number(item)
            if page is not None and 0 <= page < pages:
                marks.append((page, heading_path(titles)))

    try:
        walk(list(reader.outline), [])
    except Exception as error:  # headings are a bonus, never a failure
        log.debug("ignoring broken PDF outline: %s: %s", type(error).__name__, error)
        return {}
    if not marks:
        return {}
    first_on_page: dict[int, str] = {}
    for page, path in marks:
        first_on_page.setdefault(page, path)
    last_by_page: dict[int, str] = {}
    for page, path in sorted(marks, key=lambda mark: mark[0]):
        last_by_page[page] = path
    headings: dict[int, str] = {}
    current = ""
    for index in range(pages):
        if index in first_on_page:
            headings[index] = first_on_page[index]
            current = last_by_page[index]
        elif current:
            headings[index] = current
    return headings


def _title(item: Any) -> str:
    title = getattr(item, "title", None)
    return " ".join(str(title).split()) if title else ""


_quieted = False


def _quiet_pypdf() -> None:
    global _quieted
    if not _quieted:
        logging.getLogger("pypdf").setLevel(logging.CRITICAL)
        _quieted = True
