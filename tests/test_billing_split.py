"""The split and money arithmetic, as properties: they must hold for every input, not a few."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import Money, MoneyError, format_micros, parse_micros
from billing.split import split

pools = st.integers(min_value=0, max_value=10**15)
rows = st.dictionaries(st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=10**6),
                       min_size=1, max_size=40)


@given(pools, rows)
def test_parts_sum_to_the_pool_exactly(pool: int, weights: dict[int, int]) -> None:
    parts = split(pool, weights)
    assert set(parts) == set(weights)
    if sum(weights.values()):
        assert sum(parts.values()) == pool
    else:
        assert sum(parts.values()) == 0  # nobody to share with: the caller returns the pool


@given(pools, rows)
def test_no_part_is_negative_and_each_is_within_one_micro_of_its_exact_share(pool: int, weights: dict[int, int]) -> None:
    parts = split(pool, weights)
    total = sum(weights.values())
    for key, part in parts.items():
        assert part >= 0
        if total:
            exact = Fraction(pool * weights[key], total)
            assert abs(part - exact) < 1
            if weights[key] == 0:
                assert part == 0


@given(pools, rows)
def test_same_input_same_output(pool: int, weights: dict[int, int]) -> None:
    assert split(pool, weights) == split(pool, dict(weights))


@given(pools, rows, st.randoms(use_true_random=False))
def test_permuting_rows_changes_nothing(pool: int, weights: dict[int, int], rnd) -> None:  # type: ignore[no-untyped-def]
    pairs = list(weights.items())
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    assert split(pool, pairs) == split(pool, shuffled)


@given(pools, rows)
def test_more_points_never_get_less(pool: int, weights: dict[int, int]) -> None:
    parts = split(pool, weights)
    for a in weights:
        for b in weights:
            if weights[a] > weights[b]:
                assert parts[a] >= parts[b]


def test_ties_go_to_the_smaller_id() -> None:
    assert split(10, {3: 1, 1: 1, 2: 1}) == {1: 4, 2: 3, 3: 3}
    assert split(2, [(9, 1), (4, 1), (7, 1)]) == {4: 1, 7: 1, 9: 0}


def test_bad_input_is_refused() -> None:
    for pool, weights in ((-1, {1: 1}), (10, {1: -1}), (10, [(1, 1), (1, 2)]), (10, {1: 1.5})):
        with pytest.raises(ValueError):
            split(pool, weights)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_format_then_parse_is_the_identity(micros: int) -> None:
    assert parse_micros(format_micros(micros)) == micros


def test_parsing_amounts_without_floats() -> None:
    assert parse_micros("12.50") == 12_500_000
    assert parse_micros("0.000001") == 1
    assert parse_micros("-3") == -3_000_000
    assert parse_micros("1_000.1") == 1_000_100_000
    assert format_micros(12_500_000) == "12.50" and format_micros(1) == "0.000001" and format_micros(-5) == "-0.000005"
    for bad in ("12.5000001", "1e3", "1,5", "", "abc", "0.1.2", " . "):
        with pytest.raises(MoneyError):
            parse_micros(bad)
    assert str(Money.parse("7.25 USD", "USD")) == "7.25 USD"
    with pytest.raises(MoneyError):
        Money.parse("7.25 EUR", "USD")
    with pytest.raises(MoneyError):
        Money(1, "USD") + Money(1, "EUR")
    with pytest.raises(MoneyError):
        Money(1.5, "USD")  # type: ignore[arg-type]
