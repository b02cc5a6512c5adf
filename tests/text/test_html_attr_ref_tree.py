"""``_ATTR_REF`` writes the legacy names as a letter tree: it must match exactly what the
flat alternation (the names longest first, the pattern before) matches, with the same
spans and groups, so ``_attr_value`` decodes every value the same."""

from __future__ import annotations

import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.text.html import _ATTR_REF, _LEGACY_NAMES, _attr_value, _decode_attr_ref

# The reference definition: the pattern before the tree.
_FLAT = re.compile(
    r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;|(?:"
    + "|".join(_LEGACY_NAMES)
    + r")(?![A-Za-z0-9=]))"
)

_BOUNDARIES = [
    "",
    ";",
    "=",
    " ",
    "&",
    "#",
    "_",
    "-",
    "/",
    "é",
    *string.ascii_letters,
    *string.digits,
]


def _same(value: str) -> None:
    found = [(m.span(), m.groups()) for m in _ATTR_REF.finditer(value)]
    expected = [(m.span(), m.groups()) for m in _FLAT.finditer(value)]
    assert found == expected, value
    decoded = _FLAT.sub(_decode_attr_ref, value)
    assert _ATTR_REF.sub(_decode_attr_ref, value) == decoded, value
    assert _attr_value(value) == decoded, value


def test_every_legacy_name_before_every_boundary() -> None:
    for name in _LEGACY_NAMES:
        for prefix_length in range(1, len(name) + 1):
            head = name[:prefix_length]
            for after in _BOUNDARIES:
                _same("&" + head + after)
                _same("x=&" + head + after + "&" + name)
                _same("&" + head.swapcase() + after)


def test_every_pair_of_legacy_names() -> None:
    for first in _LEGACY_NAMES:
        for second in _LEGACY_NAMES:
            _same("&" + first + second)
            _same("&" + first + "&" + second + ";")


def test_the_tree_is_not_the_flat_pattern() -> None:
    # the property tests compare two different patterns, not one with itself
    assert _ATTR_REF.pattern != _FLAT.pattern


_PIECES = st.sampled_from(
    [
        "&",
        "&",
        "&",
        "#",
        "x",
        "X",
        ";",
        "=",
        "0",
        "1",
        "2",
        "3",
        "4",
        "9",
        "a",
        "f",
        "F",
        "g",
        "z",
        "_",
        " ",
        "é",
        *_LEGACY_NAMES,
        *(name[: len(name) // 2] for name in _LEGACY_NAMES),
        "notin",
        "amp;",
        "utm_source=",
    ]
)
_VALUES = st.lists(_PIECES, max_size=16).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_VALUES)
def test_tree_matches_the_flat_pattern(value: str) -> None:
    _same(value)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="&#xX;=01239aAfFgGlmnoptuqsi ", max_size=30))
def test_tree_matches_the_flat_pattern_on_short_alphabets(value: str) -> None:
    _same(value)
