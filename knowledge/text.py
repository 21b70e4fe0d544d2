"""Bytes of a text file to clean text, whatever the encoding it was saved in.

Creators upload what their editor wrote: UTF-8 (with or without a BOM), UTF-16 from Windows tools,
or cp1252 from older ones. We decode with the first guess that is certain (a BOM, UTF-16 by its
NULs, a strict UTF-8), then a declared charset, and fall back to cp1252 and then latin-1, which
never fail, so a text file is never refused over one odd byte. What a decoder cannot tell us is
whether the "text" is really a binary file renamed .txt: that shows as control characters, which
real text almost never holds.

Cleaning drops NUL (PostgreSQL refuses it in text) and the other control characters, strips terminal
colour codes (logs are full of them), and makes every line break a plain newline, so the splitter
and the full-text index see one kind of whitespace.
"""

from __future__ import annotations

import codecs
import re

from knowledge.section import Unreadable

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Terminal escape sequences (colours, cursor moves) as written by loggers and CLIs.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Every other form of line break becomes "\n".
_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# C0 and C1 control characters that carry no text (tab and newline are kept), and stray BOMs
# (files concatenated after saving), which would otherwise make a blank file look non-empty.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff]+")

# Any character that `clean` changes (once CRLF is done): one search finds whether there is work.
_ODD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_NOT_ASCII_ODD = bytes(byte for byte in range(256) if not (byte < 0x20 and byte not in (0x09, 0x0A) or byte == 0x7F))

_BINARY_SHARE = 0.01
"""Above this share of control characters (or undecodable bytes) the file is binary, not text."""
_BINARY_MINIMUM = 4
"""...and at least this many, so that one stray byte in a short note does not refuse it."""


def decode(data: bytes, charset: str = "") -> str:
    """Decode bytes to str, trying a BOM, UTF-16 by its NULs, UTF-8, `charset` (declared), cp1252, latin-1."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    utf16 = _bomless_utf16(data)  # first: ASCII text in UTF-16 is valid UTF-8, NULs and all
    if utf16:
        return data.decode(utf16, errors="replace")
    try:
        # Before any declared charset: bytes that are valid UTF-8 are almost never anything else,
        # while declarations (HTTP headers, <meta>) are often wrong.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if charset:
        try:
            return data.decode(_codec_name(charset))
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def clean(text: str) -> str:
    """Drop control characters and terminal codes; make every line break "\\n". Idempotent."""
    return _clean(text)[0]


def text_of(data: bytes, charset: str = "") -> str:
    """Decode and clean the bytes of a text file; raise Unreadable("corrupt") when they are binary."""
    raw = decode(data, charset)
    text, junk = _clean(raw)
    if junk >= _BINARY_MINIMUM and junk > _BINARY_SHARE * len(raw):
        raise Unreadable("corrupt")
    return text


def _clean(text: str) -> tuple[str, int]:
    """The cleaned text, and how many characters no text holds (controls, undecodable bytes) it had.

    Most files need nothing but CRLF → LF, so that and a presence test run first at C speed (a few
    milliseconds for 10 MB); the regular expressions only run on text that has something to remove.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        dirty = bool(text.encode("ascii").translate(None, _NOT_ASCII_ODD))
    else:
        dirty = _ODD.search(text) is not None
    if not dirty:
        return text, text.count("\ufffd")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _BREAKS.sub("\n", text)
    cleaned = _CONTROLS.sub("", text)
    return cleaned, len(text) - len(cleaned) + cleaned.count("\ufffd")


def _codec_name(charset: str) -> str:
    name = codecs.lookup(charset.strip().strip("\"'")).name
    # A declared "iso-8859-1" is nearly always cp1252 in practice (the WHATWG rule).
    return "cp1252" if name == "iso8859-1" else name


def _bomless_utf16(data: bytes) -> str:
    """UTF-16 without a BOM, from tools that write it: every other byte of Latin text is NUL."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 2:
        return ""
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return ""
