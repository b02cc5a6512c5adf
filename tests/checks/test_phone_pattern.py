"""The phone pattern, written for speed, finds exactly what the plain pattern finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

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
