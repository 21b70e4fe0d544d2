"""The two values every reader shares: a `Section` of extracted text, and `Unreadable`.

They live apart from knowledge/extract.py so that each format's reader can import them without
importing the dispatcher that imports the readers.
"""

from __future__ import annotations

from dataclasses import dataclass

REASONS = ("unsupported", "empty", "corrupt", "encrypted", "no_text")
"""Why a file can be refused, worded by the caller (translated) from the reason and its detail:

* ``unsupported``: not a kind we read (detail ``extension``: ".exe", or "" when the name has none).
* ``empty``: nothing but whitespace once the text is out (no detail).
* ``corrupt``: the bytes are not a valid file of the kind its name says (detail ``kind``: the human
  label from ``KINDS``, e.g. "PDF"), including a text file that is really binary.
* ``encrypted``: a PDF that needs a password to open (no detail).
* ``no_text``: a PDF whose pages hold no text, usually a scan (detail ``pages``: how many).
"""


class Unreadable(Exception):
    """Why a file cannot become knowledge; `reason` is one of REASONS, `detail` small params for the message.

    The message shown to a creator is the caller's to write (and translate); `str()` of this error is
    for logs only.
    """

    reason: str
    detail: dict[str, object]

    def __init__(self, reason: str, **detail: object) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}; expected one of {REASONS}")
        self.reason = reason
        self.detail = detail
        super().__init__(reason, detail)

    def __str__(self) -> str:
        if not self.detail:
            return self.reason
        params = ", ".join(f"{key}={value!r}" for key, value in self.detail.items())
        return f"{self.reason} ({params})"


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text that belongs under one heading on one page; passages never cross sections.

    `heading` is the path of headings above the text, joined by HEADING_SEPARATOR ("Week 2 › Derivatives"),
    and is not repeated inside `text`. `page` is the 1-based page of a PDF, else None.
    """

    text: str
    heading: str = ""
    page: int | None = None


HEADING_SEPARATOR = " › "


def heading_path(titles: list[str]) -> str:
    """Join the non-empty titles of a heading stack into the path shown next to a citation."""
    return HEADING_SEPARATOR.join(title for title in titles if title)
