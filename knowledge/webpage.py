"""HTML to sections, one per heading (h1–h6), with the page's furniture left out.

A saved web page is mostly not content: scripts, styles, navigation menus and the <head> would drown
the text that matters in a full-text index, so their contents are dropped. Block elements end a line
(li, tr, br, div…) or a paragraph (p, ul, table…), so the splitter cuts where the author did; table
cells are joined with " | " so that a row still reads as a row.

The markup is parsed by lxml (libxml2, already installed for python-docx), not by the stdlib's
html.parser: on Python 3.11 the stdlib parser is quadratic on unclosed constructs (100 KB of
"<!--" takes half a minute) and raises AssertionError on some garbage, while libxml2 repairs any
markup in linear time, as browsers do. We decode the bytes ourselves (BOM, UTF-8, the declared
charset, cp1252) and hand libxml2 UTF-8, so every kind of text file is decoded the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from knowledge.section import Section, Unreadable, heading_path
from knowledge.text import text_of

if TYPE_CHECKING:
    from lxml import etree

_SKIPPED = frozenset({"script", "style", "nav", "head", "noscript", "template", "svg", "iframe", "object"})
_PARAGRAPH = frozenset(
    {
        "p", "ul", "ol", "dl", "table", "blockquote", "pre", "section", "article", "header", "footer",
        "main", "aside", "figure", "hr", "form", "fieldset", "address", "details", "body", "html",
    }
)  # fmt: skip
_LINE = frozenset({"br", "li", "tr", "div", "dt", "dd", "caption", "figcaption", "summary", "option", "legend"})
_CELL = frozenset({"td", "th"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}

_ONE_SPACE = re.compile(r"^ (?! )")
_BLANK_RUNS = re.compile(r"\n{3,}")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_MAX_TITLE_CHARS = 200


def sections_of(data: bytes, charset: str = "") -> list[Section]:
    """Decode an HTML document (BOM, UTF-8, `charset`, then its <meta charset>) and read its text."""
    from lxml import etree

    if not charset:
        declared = _META_CHARSET.search(data[:4096])
        charset = declared.group(1).decode("ascii") if declared else ""
    parser = etree.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, huge_tree=True
    )
    try:
        root = etree.fromstring(text_of(data, charset).encode("utf-8"), parser)
    except (etree.LxmlError, ValueError) as error:
        raise Unreadable("corrupt") from error
    if root is None:  # nothing but whitespace, comments or a doctype
        return []
    reader = _TextReader()
    reader.walk(root)
    return reader.sections


class _TextReader:
    """Walks the element tree in document order, writing text and breaks, and cutting at headings."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._parts: list[str] = []
        self._pending = 0  # newlines owed before the next text: 1 a line break, 2 a paragraph break
        self._skipping = 0  # depth inside elements whose content is dropped
        self._pre = 0  # depth of <pre>: whitespace inside is kept
        self._cells = 0  # cells seen in the current table row
        self._heading_level = 0  # level of the heading being read, 0 outside one
        self._title: list[str] = []
        self._stack: list[tuple[int, str]] = []
        self._heading = ""

    def walk(self, root: etree._Element) -> None:
        from lxml import etree

        for event, element in etree.iterwalk(root, events=("start", "end")):
            tag = element.tag
            if not isinstance(tag, str):  # a comment or entity the parser kept: only its tail is text
                if event == "end" and element.tail and not self._skipping:
                    self._data(element.tail)
                continue
            tag = tag.lower()
            if event == "start":
                self._start(tag)
                if element.text and not self._skipping:
                    self._data(element.text)
            else:
                self._end(tag)
                if element.tail and not self._skipping:
                    self._data(element.tail)
        self._end_heading()
        self._flush()

    def _start(self, tag: str) -> None:
        if self._skipping or tag in _SKIPPED:
            self._skipping += 1  # every element inside a skipped one counts, so its end finds the way out
            return
        if tag in _HEADINGS:
            self._end_heading()
            self._flush()
            self._heading_level = _HEADINGS[tag]
            return
        if self._heading_level and (tag in _PARAGRAPH or tag in _LINE and tag != "br"):
            self._end_heading()  # a block inside a heading: the heading's text ends there
        if tag == "pre":
            self._pre += 1
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
            if tag == "tr":
                self._cells = 0
            elif tag == "li":
                self._write("- ")
        elif tag in _CELL:
            if self._cells:
                self._write(" | ")
            self._cells += 1

    def _end(self, tag: str) -> None:
        if self._skipping:
            self._skipping -= 1
            return
        if tag in _HEADINGS:
            self._end_heading()
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE and tag != "br":
            self._break(1)

    def _data(self, data: str) -> None:
        if self._heading_level:
            self._title.append(data)
        elif self._pre:
            self._write(data)
        else:
            self._write(_collapse(data))

    def _break(self, newlines: int) -> None:
        """Ask for a line (1) or paragraph (2) break before the next text; adjacent breaks merge."""
        self._pending = max(self._pending, newlines)

    def _write(self, text: str) -> None:
        if self._pending:
            if not text.strip():
                return  # the whitespace between two blocks
            self._parts.append("\n" * self._pending)
            self._pending = 0
        self._parts.append(text)

    def _end_heading(self) -> None:
        if not self._heading_level:
            return
        level, self._heading_level = self._heading_level, 0
        title = " ".join("".join(self._title).split())[:_MAX_TITLE_CHARS]
        self._title.clear()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))
        self._heading = heading_path([name for _, name in self._stack])

    def _flush(self) -> None:
        text = "".join(self._parts)
        self._parts.clear()
        self._pending = 0
        # Outside <pre> a line starts with at most the one space left by collapsing; inside, the
        # indentation is the author's and stays.
        lines = [_ONE_SPACE.sub("", line.rstrip()) for line in text.split("\n")]
        body = _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")
        if body:
            self.sections.append(Section(body, self._heading))


def _collapse(text: str) -> str:
    """Runs of whitespace become one space, as a browser renders them (str.split: C speed)."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")
