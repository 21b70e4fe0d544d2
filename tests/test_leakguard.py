"""Properties of the leak guard: whatever the chunking, an answer that shares a normalised run of
the threshold's length with the instructions is caught before any of that run is shown, and an
answer that shares less passes through unchanged."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.leakguard import LEAK_RUN, MIN_RUN, LeakGuard, normalize

WORDS = ["you", "are", "a", "patient", "tutor", "never", "give", "the", "answer", "explain", "each",
         "step", "ask", "questions", "kind", "math", "help", "students"]


def longest_common_run(a: str, b: str) -> int:
    """Brute force, to check the automaton against: the longest common substring's length."""
    best = 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def run_guard(instructions: str, chunks: list[str]) -> tuple[str, bool]:
    guard = LeakGuard(instructions)
    shown = "".join(guard.feed(chunk) for chunk in chunks)
    shown += guard.flush()
    return shown, guard.leaked


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


def noisy(draw: st.DrawFn, text: str) -> str:
    """The same text as a model might write it: other case, other whitespace."""
    out = []
    for char in text:
        if char == " ":
            out.append(draw(st.sampled_from([" ", "  ", "\n", " \n "])))
        else:
            out.append(char.upper() if draw(st.booleans()) else char)
    return "".join(out)


sentences = st.lists(st.sampled_from(WORDS), min_size=3, max_size=60).map(" ".join)


@st.composite
def leaking_answer(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    instructions = draw(sentences.filter(lambda s: len(s) >= LEAK_RUN + 10))
    start = draw(st.integers(0, len(instructions) - LEAK_RUN))
    run = instructions[start: draw(st.integers(start + LEAK_RUN, len(instructions)))].strip()
    assume(len(normalize(run)) >= LEAK_RUN)
    before = draw(st.sampled_from(["", "Sure! Here they are: ", "Of course.\n\n"]))
    after = draw(st.sampled_from(["", " That is all.", "\n\nAnything else?"]))
    answer = before + noisy(draw, run) + after
    cuts = draw(st.lists(st.integers(0, 10_000), max_size=12))
    return instructions, answer, chunked(answer, cuts)


@settings(max_examples=300, deadline=None)
@given(leaking_answer())
def test_verbatim_runs_above_the_threshold_are_withheld(case: tuple[str, str, list[str]]) -> None:
    instructions, _answer, chunks = case
    shown, leaked = run_guard(instructions, chunks)
    assert leaked
    assert longest_common_run(normalize(shown), normalize(instructions)) < LEAK_RUN


@settings(max_examples=200, deadline=None)
@given(leaking_answer())
def test_what_is_shown_before_a_leak_does_not_depend_on_the_chunking(case: tuple[str, str, list[str]]) -> None:
    """Token by token, in a few pieces or all at once (a fast server, a busy bot): the same text
    before the quoted run is shown, and none of the run."""
    instructions, answer, chunks = case
    whole = run_guard(instructions, [answer])
    assert run_guard(instructions, chunks) == whole == run_guard(instructions, list(answer))
    assert answer.startswith(whole[0])


@settings(max_examples=300, deadline=None)
@given(sentences, sentences, st.lists(st.integers(0, 10_000), max_size=12))
def test_any_answer_either_passes_unchanged_or_is_withheld_before_the_run(
    instructions: str, answer: str, cuts: list[int]
) -> None:
    """Answers built from the same words: the guard agrees with the brute-force definition."""
    guard_threshold = LeakGuard(instructions).threshold
    common = longest_common_run(normalize(answer), normalize(instructions))
    shown, leaked = run_guard(instructions, chunked(answer, cuts))
    if len(normalize(instructions)) < MIN_RUN or common < guard_threshold:
        assert not leaked and shown == answer
    else:
        assert leaked
        assert longest_common_run(normalize(shown), normalize(instructions)) < guard_threshold


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=400), st.lists(st.integers(0, 10_000), max_size=12))
def test_ordinary_answers_pass_through_unchanged(answer: str, cuts: list[int]) -> None:
    """Text that shares nothing long with the instructions (here: any text without a 'q') is untouched."""
    instructions = "q" * 30 + " qq " * 40
    answer = answer.replace("q", "").replace("Q", "")
    shown, leaked = run_guard(instructions, chunked(answer, cuts))
    assert not leaked and shown == answer


def test_short_instructions_are_protected_whole_and_tiny_ones_not_at_all() -> None:
    instructions = "Reply only in French, kindly."  # 29 characters: the whole of it is the threshold
    assert run_guard(instructions, ["My rules: reply ONLY in french,", " kindly. Voilà"])[1]
    assert not run_guard(instructions, ["Reply only in French, please."])[1]
    assert not run_guard("Be nice.", ["I was told: be nice. Be nice."])[1]  # under MIN_RUN: nothing to protect


def test_what_streams_before_the_quote_is_shown_and_the_quote_is_not() -> None:
    instructions = "You are Math Tutor. Explain every step of an algebra problem, never give the final answer first."
    guard = LeakGuard(instructions)
    out = [guard.feed("Happy to help. "), guard.feed("My instructions say: you are math tutor. explain every"),
           guard.feed(" step of an algebra problem, never give")]
    assert guard.leaked
    assert "".join(out).startswith("Happy to help.")
    assert "explain every" not in "".join(out).lower()


def test_the_automaton_cache_is_bounded_by_characters_and_evicted_guards_still_work() -> None:
    """Instructions of 8 000 characters cost ~3 MB of automaton each: the cache is bounded by the
    characters it holds, not by a count, and a GPT whose automaton was dropped is guarded all the same."""
    from bot import leakguard

    first = "Secret recipe step one: whisk the eggs with a pinch of salt and a spoonful of honey. " * 3
    assert LeakGuard(first).feed("Here: " + first).rstrip() == "Here:"  # guarded while cached
    for n in range(60):  # 60 GPTs of 8 000 characters each: 480 000 characters, more than the budget
        LeakGuard(f"GPT number {n}. " + "Always answer kindly and cite the course guide. " * 160)
    assert leakguard._cached_chars <= leakguard.CACHE_CHARS
    assert sum(len(text) for text, _ in leakguard._cache) == leakguard._cached_chars
    assert (first, MIN_RUN) not in leakguard._cache  # evicted: the oldest went first
    guard = LeakGuard(first)
    shown = guard.feed("Sure! Here it is. ")
    assert guard.feed(first) == "" and guard.leaked  # rebuilt, and the quote is withheld
    assert shown.startswith("Sure!")
