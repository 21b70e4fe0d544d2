"""CSV to sections of rows, each row written as "column: value; column: value".

A retrieved passage reaches the model without the file around it, so a bare row ("Ann,3,B+") means
nothing; naming every value after its column makes each row stand on its own. Rows are grouped into
sections of ROWS_PER_SECTION so that passages pack several rows, and each row is its own paragraph,
so the splitter cuts between rows rather than inside one.
"""

from __future__ import annotations

import csv
import io

from knowledge.section import Section, Unreadable
from knowledge.text import text_of

ROWS_PER_SECTION = 40
_SNIFF_CHARS = 4096
"""What the dialect is guessed from: plenty for a header and dozens of rows, and csv.Sniffer's
quote search is quadratic in it (64 KB of crafted quotes and commas take tens of seconds)."""
_DELIMITERS = ",;\t|"


def sections_of(data: bytes, heading: str, charset: str = "") -> list[Section]:
    """Read a CSV with a header row (dialect sniffed: commas, semicolons, tabs or pipes)."""
    text = text_of(data, charset)
    try:
        rows = csv.reader(io.StringIO(text, newline=""), _dialect(text))
        header = next(rows, None)
        if header is None:
            return []
        names = [name.strip() or f"column {number}" for number, name in enumerate(header, 1)]
        sections: list[Section] = []
        lines: list[str] = []
        for row in rows:
            line = _line(names, row)
            if not line:
                continue
            lines.append(line)
            if len(lines) == ROWS_PER_SECTION:
                sections.append(Section("\n\n".join(lines), heading))
                lines = []
        if lines:
            sections.append(Section("\n\n".join(lines), heading))
    except csv.Error as error:  # a field over csv's size limit, an unclosed quote at the end
        raise Unreadable("corrupt") from error
    return sections


def _line(names: list[str], row: list[str]) -> str:
    pairs = []
    for number, value in enumerate(row):
        value = " ".join(value.split())
        if value:
            name = names[number] if number < len(names) else f"column {number + 1}"
            pairs.append(f"{name}: {value}")
    return "; ".join(pairs)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut line misleads the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel
