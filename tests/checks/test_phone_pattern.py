"""The phone pattern, written for speed, finds exactly what the plain pattern finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.checks import phones
from milter.checks.phones import _PHONE

PLAIN = re.compile(  # the pattern as first written: lookbehinds first, no fast start
    r"(?<![\d+])(?:(?:\+33|0033)[\s.-]?[1-9]|0[1-9])(?:[\s.-]?\d{2}){4}(?!\d)"
    r"|(?<![\d,.])3\d[\s.]?\d{2}(?![\d,.%€])"
)
PHONE_TEXT = st.text(alphabet="0123456789+ .-,%€3abc\n\u00a0", max_size=80)


@settings(max_examples=2000)
@given(PHONE_TEXT)
def test_same_matches_as_the_plain_pattern(text: str) -> None:
    assert [m.span() for m in _PHONE.finditer(text)] == [m.span() for m in PLAIN.finditer(text)]


def test_french_numbers_found() -> None:
    text = "Appelez le 01 23 45 67 89, le +33 6 12 34 56 78 ou le 36 46 (pas 3,50 € ni 1234567890)."
    found = [m.group() for m in _PHONE.finditer(text)]
    assert found == ["01 23 45 67 89", "+33 6 12 34 56 78", "36 46"]


NUMBERS_TEXT = st.lists(
    st.sampled_from(
        [
            "0",
            "3",
            "+",
            "33",
            "01 23 45 67 89",
            "+33 6 12 34 56 78",
            "36 46",
            "0033 1",
            " ",
            ".",
            "-",
            ",",
            "5",
            "€",
            "a",
            "\n",
        ]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=1500)
@given(st.one_of(PHONE_TEXT, NUMBERS_TEXT), st.sampled_from([0, 1, 2, 3, 16]))
def test_merged_branches_find_what_the_pattern_finds(text: str, merged: int) -> None:
    """The three branch searches merged, then the pattern past ``merged`` numbers."""
    saved = phones._MERGED
    phones._MERGED = merged
    try:
        assert list(phones._numbers(text)) == [m.group() for m in _PHONE.finditer(text)]
    finally:
        phones._MERGED = saved


def test_a_number_overlapping_another_branch_is_read_once() -> None:
    # "0 33 ..." hides a short number "33 12" inside the first number; "+33" one of "33 6"
    text = "0033 1 23 45 67 89 puis +33 6 12 34 56 78 et 36 46 ou 3646, 0612345678"
    expected = [m.group() for m in _PHONE.finditer(text)]
    assert list(phones._numbers(text)) == expected
    assert expected == ["0033 1 23 45 67 89", "+33 6 12 34 56 78", "36 46", "0612345678"]
