"""The original slice range syntax, both ways, including hostile text."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mprviewer import AnnotationError
from mprviewer.annotations import format_slices, parse_slices
from mprviewer.model.slice_ranges import MAX_SLICE_INDEX


def test_the_example_from_the_original_tool():
    assert parse_slices("0-11; 57-59; 112") == [*range(0, 12), 57, 58, 59, 112]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("7", [7]),
        (" 3 - 5 ", [3, 4, 5]),
        ("5-3", [3, 4, 5]),
        ("0-2;", [0, 1, 2]),
        ("0-2; ;", [0, 1, 2]),
        ("4; 4; 4", [4]),
        ("0-5; 3-8", [0, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("10, 2, 3-4", [2, 3, 4, 10]),
        ("1;2,3", [1, 2, 3]),
        ("2\u20134", [2, 3, 4]),  # en dash as typed by word processors
        ("007", [7]),
    ],
)
def test_forgiving_forms(text, expected):
    assert parse_slices(text) == expected


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("0-11; abc; 5", "abc"),
        ("1-2-3", "1-2-3"),
        ("-4", "-4"),
        ("3.5", "3.5"),
        ("1 2", "1 2"),
        ("5-", "5-"),
        ("x-9", "x-9"),
        ("\u0663", "\u0663"),  # Arabic-Indic digit: not ASCII, refused
    ],
)
def test_bad_text_is_refused_with_the_bad_part_quoted(text, quoted):
    with pytest.raises(AnnotationError) as info:
        parse_slices(text)
    assert repr(quoted) in str(info.value)


def test_not_text_is_refused():
    with pytest.raises(AnnotationError, match="must be text"):
        parse_slices([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["0-999999999999", "100000", "5-100000", "99999999999999999999999", "1" * 5000],
)
def test_absurd_values_fail_fast_without_memory(text):
    start = time.perf_counter()
    with pytest.raises(AnnotationError):
        parse_slices(text)
    assert time.perf_counter() - start < 0.5


def test_largest_allowed_slice_and_huge_text():
    assert parse_slices(f"{MAX_SLICE_INDEX}") == [MAX_SLICE_INDEX]
    with pytest.raises(AnnotationError, match="characters long"):
        parse_slices("1;" * 600_000)


@pytest.mark.parametrize(
    ("slices", "text"),
    [
        ([0, 1, 2, 57], "0-2; 57"),
        ([], ""),
        ([5], "5"),
        ([3, 1, 2, 2], "1-3"),
        ([1, 3, 5], "1; 3; 5"),
        ([*range(0, 12), 57, 58, 59, 112], "0-11; 57-59; 112"),
    ],
)
def test_format(slices, text):
    assert format_slices(slices) == text


@pytest.mark.parametrize("bad", [[-1], [1.5], ["3"], [True], [MAX_SLICE_INDEX + 1]])
def test_format_refuses_non_slice_numbers(bad):
    with pytest.raises(AnnotationError):
        format_slices(bad)


slice_sets = st.lists(st.integers(min_value=0, max_value=2000), max_size=60)


@settings(max_examples=200, deadline=None)
@given(slice_sets)
def test_parse_of_format_gives_the_sorted_set(slices):
    assert parse_slices(format_slices(slices)) == sorted(set(slices))


_part = st.one_of(
    st.integers(0, 500).map(str),
    st.tuples(st.integers(0, 500), st.integers(0, 500)).map(lambda ab: f"{ab[0]}-{ab[1]}"),
)
range_texts = st.tuples(
    st.lists(_part, max_size=12),
    st.sampled_from([";", ",", "; ", " ; "]),
    st.booleans(),
).map(lambda t: t[1].join(t[0]) + (";" if t[2] else ""))


def _expected(text: str) -> list[int]:
    out: set[int] = set()
    for a, b in re.findall(r"(\d+)(?:-(\d+))?", text):
        lo, hi = sorted((int(a), int(b or a)))
        out.update(range(lo, hi + 1))
    return sorted(out)


@settings(max_examples=200, deadline=None)
@given(range_texts)
def test_format_of_parse_is_canonical(text):
    parsed = parse_slices(text)
    assert parsed == _expected(text)
    canonical = format_slices(parsed)
    assert format_slices(parse_slices(canonical)) == canonical
    # canonical text: ascending runs that neither touch nor overlap
    runs = [tuple(int(v) for v in r.split("-")) for r in canonical.split("; ") if r]
    flat = [(r[0], r[-1]) for r in runs]
    assert all(a <= b for a, b in flat)
    assert all(flat[i][1] + 1 < flat[i + 1][0] for i in range(len(flat) - 1))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_annotation_error(text):
    try:
        result = parse_slices(text)
    except AnnotationError:
        return
    assert result == sorted(set(result))
    assert all(0 <= v <= MAX_SLICE_INDEX for v in result)
