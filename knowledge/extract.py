"""An uploaded file's bytes to sections of clean text: the one entry point for every format.

The kind is decided by the file's extension first (what the creator named it), then by the content
type the platform reported (which is often a guess, or "application/octet-stream"). Each kind has
its reader module; this one dispatches, cleans what they return the same way (no NUL, no control
characters, one kind of line break) and turns "nothing left" into Unreadable("empty").

Everything here is pure and synchronous: no database, no network, no bot imports. A caller on the
event loop runs `extract` in a worker thread: a 10 MB PDF takes seconds.
"""

from __future__ import annotations

import os
import re

from knowledge import markdown, pdf, table, webpage, word
from knowledge.section import REASONS, Section, Unreadable
from knowledge.text import clean, text_of

__all__ = ["KINDS", "REASONS", "Section", "Unreadable", "extract", "kind_of"]

KINDS: dict[str, str] = {
    "text": "text",
    "markdown": "Markdown",
    "pdf": "PDF",
    "html": "HTML",
    "csv": "CSV",
    "docx": "Word (DOCX)",
}
"""Each kind we read, with the label a message shows for it."""

_EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".csv": "csv",
    ".docx": "docx",
}
_CONTENT_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/comma-separated-values": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)


def kind_of(name: str, content_type: str = "") -> str | None:
    """The kind of an upload (a key of KINDS), or None when we do not read it."""
    kind = _EXTENSIONS.get(extension_of(name))
    if kind is None:
        kind = _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
    return kind


def extension_of(name: str) -> str:
    """The part of a name that `kind_of` looks at first: ".pdf" for "Notes.PDF", "" for "README"."""
    return os.path.splitext(name.strip())[1].lower()


def extract(name: str, data: bytes, content_type: str = "") -> list[Section]:
    """The sections of text in a file, in order; raises Unreadable saying why there are none."""
    kind = kind_of(name, content_type)
    if kind is None:
        raise Unreadable("unsupported", extension=extension_of(name))
    if not data.strip():
        raise Unreadable("empty")
    declared = _CHARSET.search(content_type)
    charset = declared.group(1) if declared else ""
    try:
        sections = _read(kind, name, data, charset)
    except Unreadable as refusal:
        if refusal.reason == "corrupt":
            refusal.detail.setdefault("kind", KINDS[kind])
        raise
    cleaned = []
    for section in sections:
        text = clean(section.text).strip()
        if text:
            cleaned.append(Section(text, clean(section.heading).strip(), section.page))
    if not cleaned:
        raise Unreadable("empty")
    return cleaned


def _read(kind: str, name: str, data: bytes, charset: str) -> list[Section]:
    if kind == "text":
        return [Section(text_of(data, charset))]
    if kind == "markdown":
        return markdown.sections_of(text_of(data, charset))
    if kind == "pdf":
        return pdf.sections_of(data)
    if kind == "html":
        return webpage.sections_of(data, charset)
    if kind == "csv":
        return table.sections_of(data, _stem(name), charset)
    if kind == "docx":
        return word.sections_of(data)
    raise AssertionError(f"no reader for kind {kind!r}")


def _stem(name: str) -> str:
    """The file's name without folders or extension: "grades" for "exports/grades.csv"."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[0].strip() or base
