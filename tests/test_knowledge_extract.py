"""Uploaded files of every kind become sections of clean text, or a refusal that says why.

Every file here is real, written by the library a creator's tool would use (fpdf2, python-docx, the
csv module) or by hand where the point is a broken or hostile file.
"""

from __future__ import annotations

import logging
import random
import re
import zipfile
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge import KINDS, REASONS, Section, Unreadable, extract, kind_of, split
from knowledge import pdf as pdf_reader
from knowledge import table as table_reader
from tests.knowledge_files import (
    Block,
    Heading,
    big_text_bytes,
    csv_bytes,
    docx_bytes,
    html_bytes,
    markdown_bytes,
    pdf_bytes,
    raw_pdf,
    text_bytes,
)

NOTES: list[Block] = [
    Heading("Calculus notes", 0),
    Heading("Week 1"),
    "Limits describe where a function is heading.",
    Heading("Week 2"),
    "This week is about rates of change & slopes.",
    Heading("Derivatives", 2),
    "The derivative of x squared is two x.",
    [["Function", "Derivative"], ["sin x", "cos x"], ["e^x", "e^x"]],
    Heading("Exercises", 2),
    "Differentiate x cubed.",
]


def refusal(name: str, data: bytes, content_type: str = "") -> Unreadable:
    with pytest.raises(Unreadable) as caught:
        extract(name, data, content_type)
    assert caught.value.reason in REASONS
    return caught.value


def by_heading(sections: list[Section]) -> dict[str, str]:
    return {section.heading: section.text for section in sections}


# kinds


@pytest.mark.parametrize(
    ("name", "content_type", "kind"),
    [
        ("notes.txt", "", "text"),
        ("NOTES.TXT", "", "text"),
        ("server.log", "", "text"),
        ("readme.text", "", "text"),
        ("guide.md", "", "markdown"),
        ("guide.markdown", "text/plain", "markdown"),  # the extension wins over a vague type
        ("Course notes.pdf", "application/octet-stream", "pdf"),
        ("page.html", "", "html"),
        ("page.HTM", "", "html"),
        ("grades.csv", "", "csv"),
        ("essay.docx", "", "docx"),
        ("README", "text/plain; charset=utf-8", "text"),
        ("download", "application/pdf", "pdf"),
        ("export", "text/csv", "csv"),
        ("upload", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ("setup.exe", "", None),
        ("photo.png", "image/png", None),
        ("photo.png", "", None),
        ("old.doc", "application/msword", None),
        ("README", "", None),
    ],
)
def test_kind_is_decided_by_extension_then_content_type(name: str, content_type: str, kind: str | None) -> None:
    assert kind_of(name, content_type) == kind


def test_every_kind_has_a_label() -> None:
    assert set(KINDS) == {"text", "markdown", "pdf", "html", "csv", "docx"}
    assert all(KINDS.values())


def test_an_unsupported_file_is_refused_with_its_extension() -> None:
    error = refusal("setup.exe", b"MZ\x90\x00" + bytes(200))
    assert error.reason == "unsupported"
    assert error.detail == {"extension": ".exe"}
    assert refusal("Makefile", b"all:\n\techo hi\n").detail == {"extension": ""}


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        Unreadable("too_pretty")


# plain text and encodings

TEXT = "Café crème at 3 €: “quotes”, naïve résumé.\nSecond line."


@pytest.mark.parametrize(
    "data",
    [
        text_bytes(TEXT, "utf-8"),
        text_bytes(TEXT, "utf-8", bom=True),
        text_bytes(TEXT, "utf-16"),  # with its BOM, as Windows Notepad writes it
        text_bytes(TEXT, "utf-16-be", bom=True),
        text_bytes(TEXT, "utf-16-le"),  # no BOM at all
        text_bytes(TEXT, "cp1252"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "utf-16-be", "utf-16-le-no-bom", "cp1252"],
)
def test_text_in_any_common_encoding_reads_the_same(data: bytes) -> None:
    assert extract("notes.txt", data) == [Section(TEXT)]


def test_ascii_text_in_utf16_without_bom_is_not_mistaken_for_binary() -> None:
    text = "Plain English notes.\nSecond line of them."
    assert extract("notes.txt", text_bytes(text, "utf-16-le")) == [Section(text)]
    assert extract("notes.txt", text_bytes(text, "utf-16-be")) == [Section(text)]


def test_latin1_bytes_that_cp1252_lacks_still_read() -> None:
    # 0x81 is undefined in cp1252: the file must not be refused for one odd byte.
    [section] = extract("old.txt", "Été à Zürich ".encode("latin-1") + b"\x81 end")
    assert section.text.startswith("Été à Zürich")
    assert section.text.endswith("end")


def test_a_declared_charset_is_used_when_the_bytes_are_not_utf8() -> None:
    data = "Привет, мир".encode("koi8-r")
    [section] = extract("hello.txt", data, "text/plain; charset=KOI8-R")
    assert section.text == "Привет, мир"


def test_nul_bytes_and_control_characters_are_dropped() -> None:
    [section] = extract("notes.txt", b"abc\x00def\r\nnext\x07 line\rlast")
    assert section.text == "abcdef\nnext line\nlast"
    assert "\x00" not in section.text


def test_terminal_colours_in_a_log_are_stripped() -> None:
    log = b"\x1b[32mINFO\x1b[0m started\n\x1b[1;31mERROR\x1b[0m disk full\n" * 50
    [section] = extract("server.log", log)
    assert "\x1b" not in section.text
    assert section.text.splitlines()[:2] == ["INFO started", "ERROR disk full"]


def test_a_binary_file_named_txt_is_corrupt() -> None:
    error = refusal("notes.txt", b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(4000))
    assert error.reason == "corrupt"
    assert error.detail == {"kind": "text"}


@pytest.mark.parametrize("name", ["notes.txt", "notes.md", "page.html", "grades.csv", "scan.pdf", "essay.docx"])
@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n  "], ids=["zero-bytes", "whitespace"])
def test_an_empty_file_is_refused_as_empty(name: str, data: bytes) -> None:
    assert refusal(name, data).reason == "empty"


def test_a_text_that_is_only_control_characters_and_spaces_is_empty() -> None:
    assert refusal("notes.txt", text_bytes("\ufeff \n \n", "utf-16")).reason == "empty"


# Markdown


def test_markdown_sections_carry_their_heading_path() -> None:
    sections = extract("notes.md", markdown_bytes(NOTES))
    headings = by_heading(sections)
    assert headings["Week 1"] == "Limits describe where a function is heading."
    assert headings["Week 2"] == "This week is about rates of change & slopes."
    assert headings["Week 2 › Derivatives"].startswith("The derivative of x squared is two x.")
    assert "| sin x | cos x |" in headings["Week 2 › Derivatives"]
    assert headings["Week 2 › Exercises"] == "Differentiate x cubed."
    assert all(section.page is None for section in sections)


def test_markdown_setext_headings_count_too() -> None:
    assert by_heading(extract("notes.md", markdown_bytes(NOTES, setext=True))) == by_heading(
        extract("notes.md", markdown_bytes(NOTES))
    )


def test_markdown_hashes_in_code_and_hashtags_are_not_headings() -> None:
    text = (
        "Intro before any heading.\n\n"
        "## Setup\n"
        "Run this:\n\n"
        "```bash\n# install the tools\npip install x\n```\n\n"
        "#hashtag is not a heading\n\n"
        "### Closing hashes ###\n"
        "Done.\n\n"
        "A paragraph of prose\n"
        "that ends with a rule\n"
        "---\n"
        "After the rule.\n"
    )
    sections = extract("setup.md", text.encode())
    assert [section.heading for section in sections] == ["", "Setup", "Setup › Closing hashes"]
    assert "# install the tools" in sections[1].text
    assert "#hashtag is not a heading" in sections[1].text
    assert "After the rule." in sections[2].text


def test_markdown_heading_lines_of_any_length() -> None:
    data = b"# C#\n\nsharp\n\n## Title ##\n\nclosed\n\n# a" + b" " * 100_000 + b"x #\n\nlong"
    sections = extract("odd.md", data)
    assert [(section.heading, section.text) for section in sections] == [
        ("C#", "sharp"),
        ("C# › Title", "closed"),
        ("a x", "long"),
    ]


def test_a_huge_markdown_file_reads_without_losing_text() -> None:
    body = "\n\n".join(f"## Part {n}\nText of part {n}." for n in range(20_000))
    sections = extract("huge.md", body.encode())
    assert len(sections) == 20_000
    assert sections[-1] == Section("Text of part 19999.", "Part 19999")


# PDF


def test_pdf_has_one_section_per_page_with_its_number() -> None:
    pages = [f"Page {n} explains topic number {n} in detail." for n in range(1, 6)]
    sections = extract("Course notes.pdf", pdf_bytes(pages))
    assert [section.page for section in sections] == [1, 2, 3, 4, 5]
    for number, section in enumerate(sections, 1):
        assert f"topic number {number} in detail" in section.text


def test_pdf_blank_pages_are_skipped_but_keep_the_numbering() -> None:
    sections = extract("notes.pdf", pdf_bytes(["Cover page", "", "Third page text"]))
    assert [(section.page, section.text) for section in sections] == [(1, "Cover page"), (3, "Third page text")]


def test_pdf_bookmarks_become_headings() -> None:
    data = pdf_bytes(
        ["Preface text", "Limits text", "More limits", "Derivatives text"],
        bookmarks=[(1, 0, "Preface"), (2, 0, "Chapter 1"), (2, 1, "Limits"), (4, 0, "Chapter 2")],
    )
    sections = extract("book.pdf", data)
    assert [(section.page, section.heading) for section in sections] == [
        (1, "Preface"),
        (2, "Chapter 1"),  # the first bookmark on a page names it
        (3, "Chapter 1 › Limits"),  # a page without bookmarks takes the last one before it
        (4, "Chapter 2"),
    ]


def test_an_encrypted_pdf_is_refused_as_encrypted() -> None:
    error = refusal("secret.pdf", pdf_bytes(["Top secret plans"], user_password="hunter2"))
    assert error.reason == "encrypted"


def test_a_pdf_that_only_forbids_editing_still_reads() -> None:
    sections = extract("locked.pdf", pdf_bytes(["Read me freely"], owner_password="owner-only"))
    assert [section.text for section in sections] == ["Read me freely"]


def test_a_scanned_pdf_without_text_is_refused_as_no_text() -> None:
    error = refusal("scan.pdf", pdf_bytes(["", ""]))
    assert error.reason == "no_text"
    assert error.detail == {"pages": 2}


@pytest.mark.parametrize(
    "data",
    [
        pdf_bytes(["Page one", "Page two"])[:300],
        b"%PDF-1.7\n" + random.Random(1).randbytes(20_000),
        b"This is not a PDF at all, only a text file renamed.",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
    ],
    ids=["truncated", "garbage-after-header", "text", "png"],
)
def test_a_broken_pdf_is_corrupt_and_pypdf_stays_quiet(data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    error = refusal("notes.pdf", data)
    assert error.reason == "corrupt"
    assert error.detail == {"kind": "PDF"}
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def test_a_pdf_whose_page_tree_loops_is_corrupt() -> None:
    data = raw_pdf(
        [
            CATALOG,
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
        ]
    )
    assert refusal("loop.pdf", data).reason == "corrupt"


def test_a_pdf_form_that_draws_itself_still_reads_once() -> None:
    content = b"BT /F 9 Tf (again) Tj ET /X Do"
    data = raw_pdf(
        [
            CATALOG,
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R"
            b" /Resources << /XObject << /X 4 0 R >> /Font << /F 5 0 R >> >> >>",
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /XObject << /X 4 0 R >>"
            b" /Font << /F 5 0 R >> >> /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
            FONT,
        ]
    )
    [section] = extract("self.pdf", data)
    assert section.page == 1
    assert "again" in section.text


def test_pdf_pages_past_the_cap_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_reader, "MAX_PAGES", 3)
    sections = extract("long.pdf", pdf_bytes([f"Page {n}" for n in range(1, 6)]))
    assert [section.page for section in sections] == [1, 2, 3]


# HTML


def test_html_keeps_the_content_and_drops_the_furniture() -> None:
    data = html_bytes(NOTES, title="Site title", navigation=("Home", "Pricing"))
    sections = extract("notes.html", data)
    text = "\n".join(section.text for section in sections)
    for hidden in ("Site title", "Pricing", "script text", "font-family", "footer script", "trackingCode"):
        assert hidden not in text
    headings = by_heading(sections)
    # The title block is an <h1> like the weeks, so each week starts a new path.
    assert headings["Week 2"] == "This week is about rates of change & slopes."  # &amp; unescaped
    assert headings["Week 2 › Derivatives"] == (
        "The derivative of x squared is two x.\n\nFunction | Derivative\nsin x | cos x\ne^x | e^x"
    )


def test_html_blocks_break_lines_and_inline_markup_does_not() -> None:
    page = (
        b"<html><head><title>T</title>"  # no </head>: browsers forgive it, so must we
        b"<body><h1>Guide</h1><p>One <b>bold</b>\n   word&nbsp;here.</p>"
        b"<ul><li>first</li><li>second</li></ul><div>a<br>b</div><pre>  keep\n    indent</pre>"
        b"<p>caf&eacute; &lt;tag&gt; &#8364;5</p></body></html>"
    )
    [section] = extract("guide.htm", page)
    assert section.heading == "Guide"
    assert section.text == "One bold word here.\n\n- first\n- second\n\na\nb\n\n  keep\n    indent\n\ncafé <tag> €5"


def test_html_with_only_scripts_is_empty() -> None:
    assert refusal("app.html", b"<html><head><script>app()</script></head><body><nav>Menu</nav></body></html>").reason == (
        "empty"
    )


def test_html_declared_charset_is_honoured() -> None:
    data = html_bytes(["Déjà vu, naïve café."], encoding="cp1252")
    assert extract("page.html", data)[0].text == "Déjà vu, naïve café."


@pytest.mark.parametrize(
    "data",
    [b"<!--" * 50_000, b"<a" * 50_000, b"<![" * 50_000, b'<a b="' + b"x" * 200_000, b"<div>" * 100_000 + b"deep"],
    ids=["unclosed-comments", "unclosed-tags", "marked-sections", "unclosed-attribute", "deep-nesting"],
)
def test_hostile_html_is_read_or_refused_not_choked_on(data: bytes) -> None:
    # The stdlib parser takes minutes on the first two and raises AssertionError on the third.
    try:
        sections = extract("evil.html", data)
    except Unreadable as error:
        assert error.reason == "empty"
    else:
        assert all(section.text for section in sections)


# CSV


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_rows_name_their_columns(delimiter: str) -> None:
    data = csv_bytes(
        ["Student", "Grade", "Comment"],
        [["Ann Lee", "A", "Great work, keep going"], ["Bob", "B+", 'Said "hi"; left early'], ["", "", ""], ["Cy", "", "absent"]],
        delimiter=delimiter,
    )
    [section] = extract("exports/grades.csv", data)
    assert section.heading == "grades"
    assert section.text.split("\n\n") == [
        "Student: Ann Lee; Grade: A; Comment: Great work, keep going",
        'Student: Bob; Grade: B+; Comment: Said "hi"; left early',
        "Student: Cy; Comment: absent",
    ]


def test_csv_rows_are_grouped_into_sections() -> None:
    rows = [[str(n), f"item {n}"] for n in range(table_reader.ROWS_PER_SECTION * 2 + 5)]
    sections = extract("items.csv", csv_bytes(["id", "name"], rows))
    assert [len(section.text.split("\n\n")) for section in sections] == [
        table_reader.ROWS_PER_SECTION,
        table_reader.ROWS_PER_SECTION,
        5,
    ]
    assert {section.heading for section in sections} == {"items"}
    assert sections[-1].text.endswith(f"id: {len(rows) - 1}; name: item {len(rows) - 1}")


def test_csv_with_a_header_and_no_rows_is_empty() -> None:
    assert refusal("blank.csv", b"name,score\r\n").reason == "empty"


def test_csv_with_extra_cells_and_unnamed_columns() -> None:
    [section] = extract("odd.csv", b"a,,c\n1,2,3,4\n")
    assert section.text == "a: 1; column 2: 2; c: 3; column 4: 4"


# DOCX


def test_docx_headings_and_tables() -> None:
    sections = extract("notes.docx", docx_bytes(NOTES))
    headings = by_heading(sections)
    assert list(headings) == [
        "Calculus notes › Week 1",
        "Calculus notes › Week 2",
        "Calculus notes › Week 2 › Derivatives",
        "Calculus notes › Week 2 › Exercises",
    ]
    assert headings["Calculus notes › Week 2 › Derivatives"] == (
        "The derivative of x squared is two x.\n\nFunction | Derivative\nsin x | cos x\ne^x | e^x"
    )
    assert all(section.page is None for section in sections)


def test_docx_without_headings_is_one_section() -> None:
    sections = extract("memo.docx", docx_bytes(["First paragraph.", "Second paragraph."]))
    assert sections == [Section("First paragraph.\n\nSecond paragraph.")]


def test_a_docx_with_nothing_in_it_is_empty() -> None:
    assert refusal("blank.docx", docx_bytes([])).reason == "empty"


def zip_of(files: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04 not really a zip",
        random.Random(2).randbytes(5000),
        zip_of({"hello.txt": b"a zip, but not a Word document"}),
        docx_bytes(["Some text"])[:-200],
        zip_of({"word/document.xml": bytes(300 * 1024 * 1024)}),  # 300 MB of zeros in ~300 KB
    ],
    ids=["bad-zip", "random", "other-zip", "truncated", "zip-bomb"],
)
def test_a_broken_docx_is_corrupt(data: bytes) -> None:
    error = refusal("essay.docx", data)
    assert error.reason == "corrupt"
    assert error.detail == {"kind": "Word (DOCX)"}


# size


def test_a_ten_megabyte_text_file_extracts_and_splits_whole() -> None:
    data, markers = big_text_bytes(10 * 1024 * 1024)
    sections = extract("big.txt", data)
    passages = split(sections)
    assert len(data) // 1200 < len(passages) < len(data) // 600
    found = set(re.findall(r"marker\d{6}", "\n".join(passage.text for passage in passages)))
    assert found == set(markers)
    assert max(len(passage.text) for passage in passages) <= 1200
    assert [passage.position for passage in passages] == list(range(len(passages)))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["a.txt", "a.md", "a.html", "a.csv", "a.pdf", "a.docx"]),
    st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda tail: b"%PDF-1.4\n" + tail),
        st.binary(max_size=3000).map(lambda tail: b"PK\x03\x04" + tail),
        st.text(max_size=3000).map(lambda text: text.encode("utf-8", "surrogatepass")),
    ),
)
def test_any_bytes_give_sections_or_a_refusal(name: str, data: bytes) -> None:
    try:
        sections = extract(name, data)
    except Unreadable as error:
        assert error.reason in REASONS
    else:
        assert sections and all(section.text.strip() and "\x00" not in section.text for section in sections)
