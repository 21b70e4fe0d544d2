"""Markdown to sections, one per heading, each carrying the path of headings above it.

Only the headings matter here: the body stays Markdown, which the model reads as well as prose. We
recognise ATX headings (``## Derivatives``) and setext ones (a line underlined with ``===`` or ``---``),
and ignore anything that looks like a heading inside a fenced code block (a ``# comment`` in a shell
snippet is not a chapter). A full CommonMark parser would buy nothing more for this and cost a
dependency and a lot of time on a 10 MB file; this is one pass over the lines.
"""

from __future__ import annotations

import re

from knowledge.section import Section, heading_path

_ATX_OPENING = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# A line that cannot be the text of a setext heading: a list item, a quote, a table row, a rule.
_NOT_SETEXT_TEXT = re.compile(r" {0,3}(?:[-*+](?:\s|$)|[>|#]|\d{1,9}[.)](?:\s|$))")
# Inline markup to drop from a heading's title: emphasis, code ticks, links.
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"[*_`]+")

_SETEXT_MAX_CHARS = 200
"""A longer "paragraph" above a ``---`` is prose followed by a rule, not a heading."""
_MAX_TITLE_CHARS = 200


def sections_of(text: str) -> list[Section]:
    """Split Markdown text (already decoded and cleaned) at its headings."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # (level, title) of the headings above the current line
    body: list[str] = []
    heading = ""
    fence = ""  # the fence that opened the current code block, "" outside one

    def flush() -> None:
        if body:
            content = "\n".join(body).strip("\n")
            if content.strip():
                sections.append(Section(content, heading))
            body.clear()

    def open_heading(level: int, title: str) -> None:
        nonlocal heading
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, _plain_title(title)))
        heading = heading_path([title for _, title in stack])

    lines = text.split("\n")
    front_matter = lines[0].rstrip() == "---"  # YAML front matter: its closing "---" is no underline
    for number, line in enumerate(lines):
        first = line.lstrip(" ")[:1]
        if front_matter:
            body.append(line)
            front_matter = number == 0 or line.rstrip() not in ("---", "...")
            continue
        if fence:
            body.append(line)
            closing = _FENCE.fullmatch(line.rstrip())
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                fence = ""
            continue
        if first in ("`", "~"):
            opening = _FENCE.match(line)
            if opening:
                fence = opening.group(1)
                body.append(line)
                continue
        if first == "#":
            atx = _ATX_OPENING.match(line)
            if atx:
                open_heading(len(atx.group(1)), _atx_title(line[atx.end() :]))
                continue
        if first in ("=", "-") and body:
            setext = _SETEXT.fullmatch(line)
            title = _setext_title(body)
            if setext and title is not None:
                del body[-1]
                open_heading(1 if setext.group(1)[0] == "=" else 2, title)
                continue
        body.append(line)
    flush()
    return sections


def _setext_title(body: list[str]) -> str | None:
    """The line above an underline, when it can be a setext heading's text."""
    above = body[-1]
    if not above.strip() or len(above) > _SETEXT_MAX_CHARS or _NOT_SETEXT_TEXT.match(above):
        return None
    if len(body) > 1 and body[-2].strip():
        # The underline ends a paragraph of several lines: CommonMark would make the whole
        # paragraph the heading, which in practice is prose above a horizontal rule.
        return None
    if above.startswith(("    ", "\t")):
        return None
    return above.strip()


def _atx_title(rest: str) -> str:
    """The text after "## ", without the optional closing hashes ("## Title ##").

    By hand rather than by one regular expression: a lazy title followed by an optional closing
    sequence backtracks quadratically on a long line of spaces.
    """
    title = rest.strip()
    unclosed = title.rstrip("#")
    if unclosed != title and (not unclosed or unclosed[-1] in " \t"):
        title = unclosed.rstrip()
    return title


def _plain_title(title: str) -> str:
    """The title on one line without inline markup; cut first, as link syntax in a huge line is slow to scan."""
    title = " ".join(title.split())[:_MAX_TITLE_CHARS]
    return _EMPHASIS.sub("", _LINK.sub(r"\1", title)).strip()
