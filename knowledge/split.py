"""Sections to passages: the pieces that are indexed, retrieved and quoted to the model.

A passage should hold one idea with enough around it to be understood alone, and fit a token budget
several times over. So we cut where the author did: at the last paragraph break past the first
quarter of the window, else at the last sentence end past its half, else at a line break, else
between words, and only as a last resort inside a word. Consecutive passages of a section share about `overlap_chars`
(the tail of the previous one, from a sentence or word start) so that a fact straddling a cut is
whole in at least one passage. Passages never cross sections, so each has one heading and one page.

Every passage is a slice of its section's text with whitespace normalised (lines right-trimmed,
blank-line runs collapsed), found by searching backwards from a window's end, so the work is linear
in the text: no string is built up piece by piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.section import Section
from knowledge.text import clean

__all__ = ["Passage", "split"]


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a file to index: its text, where it sits (heading, page) and its order in the file."""

    text: str
    heading: str
    page: int | None
    position: int  # 0-based order within the file


# A sentence ends at . ! ? or … (maybe followed by closing quotes or brackets) before whitespace,
# or at a CJK full stop, which needs no space after it.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)|[。！？][\"'”’」』)]*")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s")
_MIN_TARGET = 20
_SPACES = (" ", "\t", "\u00a0", "\u3000")  # the blanks left inside lines once lines are normalised


def split(sections: Iterable[Section], *, target_chars: int = 1200, overlap_chars: int = 200) -> list[Passage]:
    """Cut sections into passages of at most `target_chars`, overlapping by about `overlap_chars`.

    `overlap_chars` may be at most half of `target_chars`, so that every passage brings new text.
    """
    if target_chars < _MIN_TARGET:
        raise ValueError(f"target_chars must be at least {_MIN_TARGET}")
    if not 0 <= overlap_chars <= target_chars // 2:
        raise ValueError("overlap_chars must be between 0 and half of target_chars")
    passages: list[Passage] = []
    for section in sections:
        text = _normalise(section.text)
        for start, end in _spans(text, target_chars, overlap_chars):
            passages.append(Passage(text[start:end].strip(), section.heading, section.page, len(passages)))
    return passages


def _normalise(text: str) -> str:
    """Right-trim lines and make every run of blank lines one paragraph break ("\\n\\n").

    Each rewrite runs only when a fast substring test says it has work: on a clean 10 MB text the
    regular expressions would cost more than all the cutting.
    """
    text = clean(text)
    if not text.isascii():
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    elif " \n" in text or "\t\n" in text:  # the only blanks a clean ASCII text can hold
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def _spans(text: str, target: int, overlap: int) -> Iterable[tuple[int, int]]:
    """(start, end) of each passage of one normalised (so stripped) section, in order."""
    length = len(text)
    start = fresh = 0  # the passage starts at `start`; its new text (after the overlap) at `fresh`
    while fresh < length:
        end = length if start + target >= length else _cut(text, start, fresh, start + target, target)
        yield start, end
        start = _overlap_start(text, start, end, overlap)
        fresh = end
        while fresh < length and text[fresh].isspace():
            fresh += 1
        if fresh - start > target - target // 4:
            start = fresh  # a long run of spaces ate the window: no overlap rather than no progress


def _cut(text: str, start: int, fresh: int, limit: int, target: int) -> int:
    """Where the passage starting at `start` ends: after `fresh`, at most `limit`, never after a blank.

    Ending on text rather than on a run of spaces keeps the next passage's overlap from being blank.
    """
    end = _boundary(text, start, fresh, limit, target)
    while end - 1 > fresh and text[end - 1].isspace():
        end -= 1
    return end


def _boundary(text: str, start: int, fresh: int, limit: int, target: int) -> int:
    """The best boundary: `fresh` is at most three quarters of a window past `start`, so there is room."""
    half = max(fresh + 1, start + target // 2)
    # A paragraph break anywhere after the first quarter: a shorter passage beats a broken paragraph.
    paragraph = text.rfind("\n\n", max(fresh + 1, start + target // 4), limit)
    if paragraph != -1:
        return paragraph
    sentence = -1
    for match in _SENTENCE_END.finditer(text, half, limit + 1):
        if match.end() <= limit:
            sentence = match.end()
    if sentence != -1:
        return sentence
    line = text.rfind("\n", half, limit)
    if line != -1:
        return line
    space = max(text.rfind(blank, half, limit + 1) for blank in _SPACES)
    return space if space != -1 else limit


def _overlap_start(text: str, start: int, end: int, overlap: int) -> int:
    """Where the next passage starts: about `overlap` before `end`, at a sentence or word start."""
    budget = min(overlap, (end - start) // 2)
    if budget <= 0:
        return end
    lowest = end - budget
    # A sentence (or line) start that keeps at least half the budget of overlap.
    for match in _SENTENCE_END.finditer(text, max(0, lowest - 1), end - budget // 2):
        boundary = match.end()
        if boundary >= lowest:
            return boundary
    line = text.find("\n", max(0, lowest - 1), end - budget // 2)
    if line != -1 and line + 1 >= lowest:
        return line + 1
    space = _WHITESPACE.search(text, max(0, lowest - 1), end)
    if space is not None and space.end() < end:
        return space.end()
    return lowest
