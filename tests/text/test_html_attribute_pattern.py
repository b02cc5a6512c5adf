"""The attribute pattern (possessive repeats) reads what the plain repeats read.

``milter.text.html._ATTRIBUTE`` is written with possessive repeats (less work in the
regex engine); no shorter reading of a name, a space run or a value can let the rest
match where the longest does not, so its matches are those of the pattern with plain
repeats (the pattern before), at every position and with every group.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.text.html import _ATTRIBUTE

_PLAIN = re.compile(
    r"(?P<name>[^\t\n\f\r />][^\t\n\f\r />=]*)"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[^\t\n\f\r >]*)))?"
)
_TEXT = st.text(alphabet="a=\"' >/\t\n\f\rxé&;", max_size=40)


def _read(pattern: re.Pattern[str], text: str, at: int) -> object:
    found = pattern.match(text, at)
    return found and (found.span(), found.groups(), found.lastgroup)


@settings(max_examples=2000, deadline=None)
@given(_TEXT)
def test_the_possessive_attribute_pattern_reads_what_the_plain_one_reads(text: str) -> None:
    assert _ATTRIBUTE.findall(text) == _PLAIN.findall(text)
    for at in range(len(text) + 1):
        assert _read(_ATTRIBUTE, text, at) == _read(_PLAIN, text, at), (text, at)


def test_a_plain_repeat_that_differs_is_caught() -> None:
    """The comparison sees a pattern that reads one character less of a name."""
    shorter = re.compile(_PLAIN.pattern.replace("[^\\t\\n\\f\\r />=]*)", "[^\\t\\n\\f\\r />=]*?)"))
    assert shorter.findall("ab=1") != _ATTRIBUTE.findall("ab=1")
