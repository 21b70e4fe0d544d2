"""Real files of every kind knowledge/ reads, built in memory with the real libraries.

Shared by the knowledge tests, the adapter and console upload tests and the bench: each builder
returns the bytes a creator would upload. Documents are written once as a list of blocks and can be
rendered in several formats, so a test can ask the same question of the same notes as PDF, DOCX,
HTML or Markdown:

    notes = [Heading("Week 2"), Heading("Derivatives", 2), "The derivative of x² is 2x.", [["f", "f'"], ["x²", "2x"]]]
    docx_bytes(notes); html_bytes(notes); markdown_bytes(notes)

A block is a paragraph (str), a heading (Heading; level 0 is a document title), or a table (a list of
rows, each a list of cell strings, the first row being the header). PDFs are built per page instead
(`pdf_bytes(["page one text", "page two text"])`), because a PDF's unit is the page.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Block",
    "Heading",
    "big_text_bytes",
    "csv_bytes",
    "docx_bytes",
    "html_bytes",
    "markdown_bytes",
    "pdf_bytes",
    "raw_pdf",
    "text_bytes",
]


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading block: level 1..6 ("Heading N" in Word, <hN> in HTML, N × "#"), 0 for a title."""

    text: str
    level: int = 1


Block = str | Heading | list[list[str]]
"""A paragraph, a heading, or a table given as rows of cells (first row = header)."""


def text_bytes(text: str, encoding: str = "utf-8", *, bom: bool = False) -> bytes:
    """`text` encoded as a text editor would save it; `bom` prefixes the encoding's byte order mark.

    encoding "utf-16" always writes a BOM (as Windows tools do); "utf-16-le" writes none unless asked.
    """
    data = text.encode(encoding)
    if bom:
        marks = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
        data = marks[codecs.lookup(encoding).name] + data
    return data


def pdf_bytes(
    pages: Sequence[str],
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
    bookmarks: Sequence[tuple[int, int, str]] = (),
) -> bytes:
    """A PDF written by fpdf2 with one page per string ("" makes a blank page, as a scan would read).

    Text wraps within the page and never flows onto the next one, so page N holds exactly pages[N-1]
    (keep each under ~3 000 characters for it to be visible; the text layer holds it all anyway).
    The built-in Helvetica font only has Latin-1 characters.
    `bookmarks` are outline entries (page number from 1, level from 0, title), in page order.
    `user_password` encrypts (AES-256) so that opening needs it; `owner_password` alone encrypts
    too but opens with no password, like PDFs that only forbid editing.
    """
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    marks = sorted(bookmarks, key=lambda mark: mark[0])
    for number, text in enumerate(pages, 1):
        pdf.add_page()
        for _, level, title in (mark for mark in marks if mark[0] == number):
            pdf.start_section(title, level=level)
        if text:
            pdf.multi_cell(0, 5, text)
    if user_password is not None or owner_password is not None:
        pdf.set_encryption(
            owner_password=owner_password or user_password or "",
            user_password=user_password or "",
            encryption_method=EncryptionMethod.AES_256,
        )
    return bytes(pdf.output())


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF assembled by hand from object bodies (object 1 must be the catalog), with a correct xref.

    For hostile files no PDF library would write: page trees that loop, forms that draw themselves,
    a /Count that lies. `raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", ...])`.
    """
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx_bytes(blocks: Sequence[Block]) -> bytes:
    """A Word document written by python-docx: headings use Word's "Title"/"Heading N" styles."""
    from docx import Document

    document = Document()
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=block.level)
        elif isinstance(block, str):
            document.add_paragraph(block)
        else:
            columns = max(len(row) for row in block)
            table = document.add_table(rows=len(block), cols=columns)
            for cells, row in zip(table.rows, block, strict=True):
                for cell, value in zip(cells.cells, row, strict=False):
                    cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_bytes(
    blocks: Sequence[Block],
    *,
    title: str = "Page title",
    navigation: Sequence[str] = ("Home", "About us", "Contact"),
    encoding: str = "utf-8",
) -> bytes:
    """A web page as a CMS would save it: <head> with a title, a style and a script, a <nav> menu,
    the blocks in <main> (text HTML-escaped, so "&" arrives as "&amp;"), and a trailing script.
    The title, menu entries and script/style contents must never reach the extracted text."""
    escape = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="{encoding}"><title>{escape(title)}</title>',
        "<style>body { font-family: sans-serif } .hidden { display: none }</style>",
        "<script>window.trackingCode = 'script text must not be indexed';</script>",
        "</head><body>",
        "<nav><ul>" + "".join(f'<li><a href="#">{escape(item)}</a></li>' for item in navigation) + "</ul></nav>",
        "<main>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            out.append(f"<h{level}>{escape(block.text)}</h{level}>")
        elif isinstance(block, str):
            out.append(f"<p>{escape(block)}</p>")
        else:
            head, *rows = block
            out.append("<table><thead><tr>" + "".join(f"<th>{escape(cell)}</th>" for cell in head) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
            out.append("</tbody></table>")
    out.append("</main><script>console.log('footer script');</script></body></html>")
    return "\n".join(out).encode(encoding)


def markdown_bytes(blocks: Sequence[Block], *, setext: bool = False) -> bytes:
    """Markdown with ATX headings ("## Title"), or setext ones (underlined) for levels 1-2 if `setext`."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            if setext and level <= 2:
                out.append(f"{block.text}\n{('=' if level == 1 else '-') * max(3, len(block.text))}")
            else:
                out.append(f"{'#' * level} {block.text}")
        elif isinstance(block, str):
            out.append(block)
        else:
            head, *rows = block
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines.extend("| " + " | ".join(row) + " |" for row in rows)
            out.append("\n".join(lines))
    return ("\n\n".join(out) + "\n").encode("utf-8")


def csv_bytes(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> bytes:
    """A CSV written by the csv module (values quoted when they hold the delimiter or quotes)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


_VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can out some what "
    "limit derivative integral function value series matrix vector proof theorem lemma example exercise"
).split()


def big_text_bytes(size: int, *, seed: int = 0) -> tuple[bytes, list[str]]:
    """About `size` bytes of plain text in paragraphs of sentences, and a marker word per paragraph.

    Each paragraph starts with a unique marker ("marker000042") so a test can check that every
    paragraph reached some passage. Deterministic for a given seed.
    """
    rng = random.Random(seed)
    paragraphs: list[str] = []
    markers: list[str] = []
    total = 0
    while total < size:
        marker = f"marker{len(markers):06d}"
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = rng.choices(_VOCABULARY, k=rng.randint(4, 30))
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?"))
        paragraph = marker + " " + " ".join(sentences)
        markers.append(marker)
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs).encode("ascii"), markers
