"""DOCX to sections, one per heading, using the paragraph styles Word writes ("Title", "Heading N").

A .docx is a zip of XML parts, and a small zip can inflate to gigabytes: before python-docx reads
every part into memory we check the sizes the archive declares (reading never goes past them).
Paragraphs and tables are read in document order; a table row becomes one line with its cells
joined by " | ". Pages are left as None: Word decides page breaks when it lays the text out, and
the file only records the ones an author forced, which would give wrong page numbers.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import TYPE_CHECKING

from knowledge.section import Section, Unreadable, heading_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from docx.table import Table
    from docx.text.paragraph import Paragraph

log = logging.getLogger(__name__)

MAX_UNPACKED_BYTES = 128 * 1024 * 1024
"""The most a .docx may declare it unpacks to, images included: python-docx holds every part in memory."""
MAX_XML_BYTES = 48 * 1024 * 1024
"""The most XML it may declare: lxml holds the parsed tree, several times the size of its text."""
MAX_PARTS = 10_000

_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_TITLE_LEVEL = 0  # above "Heading 1", so a document's chapters sit under its title


def sections_of(data: bytes) -> list[Section]:
    """The paragraphs and tables of a Word document, under the headings they follow."""
    _check_archive(data)
    from docx import Document

    try:
        document = Document(io.BytesIO(data))
        return _read(document.iter_inner_content())
    except Exception as error:  # any failure of the parser means a bad file
        log.debug("unreadable DOCX: %s: %s", type(error).__name__, error)
        raise Unreadable("corrupt") from None


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        log.debug("DOCX is not a zip: %s", error)
        raise Unreadable("corrupt") from None
    xml = sum(part.file_size for part in parts if part.filename.endswith((".xml", ".rels")))
    if len(parts) > MAX_PARTS or xml > MAX_XML_BYTES or sum(part.file_size for part in parts) > MAX_UNPACKED_BYTES:
        log.debug("DOCX declares too much to unpack: %d parts, %d bytes of XML", len(parts), xml)
        raise Unreadable("corrupt")


def _read(blocks: Iterable[Paragraph | Table]) -> list[Section]:
    from docx.table import Table  # noqa: F811 - the runtime class, imported late like python-docx itself

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    heading = ""
    body: list[str] = []

    def flush() -> None:
        text = "\n\n".join(body).strip()
        body.clear()
        if text:
            sections.append(Section(text, heading))

    for block in blocks:
        if isinstance(block, Table):
            rows = _table_lines(block)
            if rows:
                body.append("\n".join(rows))
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if level is None:
            if text:
                body.append(text)
            continue
        if not text:
            continue
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, " ".join(text.split())))
        heading = heading_path([title for _, title in stack])
    flush()
    return sections


def _heading_level(paragraph: Paragraph) -> int | None:
    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    if name.lower() == "title":
        return _TITLE_LEVEL
    match = _HEADING_STYLE.fullmatch(name.strip())
    return int(match.group(1)) if match else None


def _table_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell is listed once per grid column it spans
                continue
            previous = cell._tc
            value = " ".join(cell.text.split())
            if value:
                cells.append(value)
        if cells:
            lines.append(" | ".join(cells))
    return lines
