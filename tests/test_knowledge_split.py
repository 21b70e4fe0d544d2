"""Sections become passages that cover every word, fit the budget, overlap, and stay in their section."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge import Passage, Section, extract, split
from knowledge.text import clean
from tests.knowledge_files import pdf_bytes

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzàéîöß0123456789", min_size=1, max_size=15)
# Separators as editors and extractors leave them: spaces, sentence ends, line breaks, blank-line
# runs with stray spaces, tabs, CRLF.
SEPARATOR = st.sampled_from([" ", " ", " ", " ", ". ", "! ", "? ", ", ", "\n", "\n\n", "  ", "\t", ".\n", "\n \n\n\n", "\r\n", "\r\n\r\n"])


@st.composite
def section_texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, max_size=400))
    parts = []
    for word in words:
        parts.append(word)
        parts.append(draw(SEPARATOR))
    return draw(st.sampled_from(["", " \n", "\n\n"])) + "".join(parts)


@st.composite
def documents(draw: st.DrawFn) -> list[Section]:
    texts = draw(st.lists(section_texts(), max_size=5))
    # Distinct headings so each passage's section is known; pages like a PDF's, in order.
    return [Section(text, f"section {index}", index + 1) for index, text in enumerate(texts)]


BUDGETS = st.integers(min_value=60, max_value=1500).flatmap(
    lambda target: st.tuples(st.just(target), st.integers(min_value=0, max_value=target // 2))
)


def shared_prefix(previous: str, following: str, longest: int) -> int:
    """The longest k <= longest with previous ending in following's first k characters."""
    for size in range(min(longest, len(previous), len(following)), 0, -1):
        if previous.endswith(following[:size]):
            return size
    return 0


def flat(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=300, deadline=None)
@given(documents(), BUDGETS)
def test_passages_cover_every_word_fit_and_stay_in_their_section(
    sections: list[Section], budget: tuple[int, int]
) -> None:
    target, overlap = budget
    passages = split(sections, target_chars=target, overlap_chars=overlap)

    assert [passage.position for passage in passages] == list(range(len(passages)))
    by_section: dict[str, list[Passage]] = {}
    for passage in passages:
        by_section.setdefault(passage.heading, []).append(passage)
    # In file order: all of a section's passages before the next section's.
    assert [passage.heading for passage in passages] == sorted(
        (passage.heading for passage in passages), key=lambda heading: int(heading.split()[1])
    )

    for section in sections:
        own = by_section.get(section.heading, [])
        assert all(passage.page == section.page for passage in own)  # never across pages
        words = section.text.split()
        assert bool(own) == bool(words)
        whole = flat(section.text)
        for passage in own:
            assert passage.text and passage.text == passage.text.strip()
            assert len(passage.text) <= target
            assert "\n\n\n" not in passage.text and "\r" not in passage.text
            assert not re.search(r"[ \t]\n", passage.text)
            assert flat(passage.text) in whole  # a slice of its own section, nothing from another
        covered = set()
        for passage in own:
            covered.update(passage.text.split())
        assert set(words) <= covered

        if overlap:
            for previous, following in zip(own, own[1:], strict=False):
                assert shared_prefix(previous.text, following.text, len(previous.text)) >= 1


@settings(max_examples=100, deadline=None)
@given(documents(), BUDGETS)
def test_splitting_is_deterministic(sections: list[Section], budget: tuple[int, int]) -> None:
    target, overlap = budget
    assert split(sections, target_chars=target, overlap_chars=overlap) == split(
        list(sections), target_chars=target, overlap_chars=overlap
    )


def numbered_sentences(count: int, *, per_paragraph: int = 0) -> str:
    """Sentences with unique words ("Sentence 12 says w12a w12b ..."), in paragraphs if asked."""
    sentences = [f"Sentence {n} says w{n}a w{n}b w{n}c w{n}d w{n}e." for n in range(count)]
    if not per_paragraph:
        return " ".join(sentences)
    return "\n\n".join(" ".join(sentences[i : i + per_paragraph]) for i in range(0, count, per_paragraph))


def test_overlap_is_about_the_asked_size_and_starts_at_a_sentence() -> None:
    passages = split([Section(numbered_sentences(400))], target_chars=1200, overlap_chars=200)
    assert len(passages) > 10
    for previous, following in zip(passages, passages[1:], strict=False):
        shared = shared_prefix(previous.text, following.text, 400)
        assert 100 <= shared <= 200
        assert following.text.startswith("Sentence ")
        assert previous.text.endswith(".")  # cut at a sentence end, not mid-sentence


def test_no_overlap_when_none_is_asked() -> None:
    passages = split([Section(numbered_sentences(200))], target_chars=500, overlap_chars=0)
    assert " ".join(passage.text for passage in passages) == numbered_sentences(200)


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    text = numbered_sentences(120, per_paragraph=6)  # paragraphs of ~330 characters
    paragraphs = text.split("\n\n")
    passages = split([Section(text)], target_chars=1200, overlap_chars=0)
    assert all(piece in paragraphs for passage in passages for piece in passage.text.split("\n\n"))
    assert all(len(passage.text) > 600 for passage in passages[:-1])  # packed, not one paragraph each
    assert "\n\n".join(passage.text for passage in passages) == "\n\n".join(paragraphs)


def test_a_text_without_spaces_is_cut_hard_and_loses_nothing() -> None:
    blob = "".join(f"{n:04d}" for n in range(2_000))  # 8 000 characters, no space
    passages = split([Section(blob)], target_chars=1000, overlap_chars=100)
    assert all(len(passage.text) <= 1000 for passage in passages)
    rebuilt = passages[0].text
    for passage in passages[1:]:
        shared = shared_prefix(rebuilt, passage.text, 100)
        assert shared == 100
        rebuilt += passage.text[shared:]
    assert rebuilt == blob


def test_cjk_text_is_cut_after_its_full_stops() -> None:
    text = "".join(f"这是第{n}句话。" for n in range(600))
    passages = split([Section(text)], target_chars=300, overlap_chars=50)
    assert all(passage.text.endswith("。") for passage in passages)
    assert all(len(passage.text) <= 300 for passage in passages)


def test_lines_of_a_table_are_not_cut_in_the_middle() -> None:
    rows = "\n".join(f"row {n} | value {n} | note {n}" for n in range(300))
    passages = split([Section(rows)], target_chars=400, overlap_chars=0)
    assert all(re.fullmatch(r"(row \d+ \| value \d+ \| note \d+\n?)+", passage.text) for passage in passages)


def test_whitespace_is_normalised() -> None:
    [passage] = split([Section("  First line   \r\n\r\n\n\n  second\tline \t\n\n\n\nthird  ")])
    assert passage == Passage("First line\n\n  second\tline\n\nthird", "", None, 0)


def test_blank_sections_give_no_passages() -> None:
    assert split([Section(""), Section(" \n\n\t ")]) == []
    assert split([]) == []


def test_positions_run_across_sections_in_order() -> None:
    passages = split([Section("alpha", "A"), Section("beta", "B", 2), Section("gamma", "", 3)])
    assert passages == [
        Passage("alpha", "A", None, 0),
        Passage("beta", "B", 2, 1),
        Passage("gamma", "", 3, 2),
    ]


@pytest.mark.parametrize(("target", "overlap"), [(1, 0), (19, 0), (100, 51), (100, -1)])
def test_impossible_budgets_are_refused(target: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        split([Section("text")], target_chars=target, overlap_chars=overlap)


def test_pdf_passages_keep_their_page() -> None:
    pages = [numbered_sentences(30).replace("Sentence", f"Page{n}") for n in range(1, 4)]
    passages = split(extract("book.pdf", pdf_bytes(pages)), target_chars=600, overlap_chars=100)
    assert {passage.page for passage in passages} == {1, 2, 3}
    for passage in passages:
        assert set(re.findall(r"Page(\d)", passage.text)) == {str(passage.page)}


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=20, max_value=200))
def test_any_text_at_all_splits_within_budget(text: str, target: int) -> None:
    passages = split([Section(text)], target_chars=target, overlap_chars=target // 2)
    assert all(0 < len(passage.text) <= target for passage in passages)
    whole = flat(clean(text))
    assert all(flat(passage.text) in whole for passage in passages)
    assert bool(passages) == bool(whole)
