"""The HTML view's attribute reading (``_attributes``) gives what the tokenizer's gives.

Two shortcuts are checked here: the attribute pattern written with an empty alternative
instead of an optional group (``_ATTRIBUTES``: the same matches as ``_ATTRIBUTE``), and a
value decoded only where a character reference may start (``_REFERENCE``: every match of
``_attr_value``'s pattern starts where it matches, so a value it does not match is its
own decoding). Generated values mix every legacy name (the ones a value may hold without
";"), numeric references, bare "&" and the characters that end or continue a name.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.text import html_view
from milter.text.html import _ATTR_REF, _ATTRIBUTE, _LEGACY_NAMES, _attr_value

_SETTINGS = settings(max_examples=1000, deadline=None)

_VALUE_PIECES = (
    *("&" + name for name in _LEGACY_NAMES),
    "&",
    "&#",
    "&#6",
    "&#x4",
    "&#X",
    ";",
    "=",
    "x",
    "X",
    "1",
    "_",
    "&utm_source",
    "&amp;",
    "&notin;",
    "&hellip;",
    "&rarr;",
    "&Zz;",
    "é",
    " ",
)
VALUES = st.lists(st.sampled_from(_VALUE_PIECES), max_size=8).map("".join)
_LIST_PIECES = (
    " ",
    "\t",
    "\n",
    "/",
    "=",
    " = ",
    '"',
    "'",
    ">",
    "href",
    "HREF",
    "Src",
    "alt",
    "a",
    '="x y"',
    "='a>b'",
    "=bare",
    '="&amp;&utm_source=1"',
    "=&copy=2",
    "=&AElig",
    "&",
)
ATTRIBUTE_LISTS = st.lists(st.sampled_from(_LIST_PIECES), max_size=16).map("".join)


def _reference_attributes(raw: str) -> dict[str, str]:
    """The reading by definition: every attribute of ``_ATTRIBUTE``, names lower-cased,
    the first of a name kept, each value decoded by ``_attr_value``."""
    attrs: dict[str, str] = {}
    for name, dq, sq, bare in _ATTRIBUTE.findall(raw):
        attrs.setdefault(name.lower(), _attr_value(dq or sq or bare))
    return attrs


def _starts_every_reference(value: str) -> None:
    for found in _ATTR_REF.finditer(value):
        assert html_view._REFERENCE.match(value, found.start()) is not None, value
    if html_view._REFERENCE.search(value) is None:
        assert _attr_value(value) == value, value


@_SETTINGS
@given(VALUES)
def test_a_reference_starts_where_the_shortcut_looks(value: str) -> None:
    _starts_every_reference(value)


@pytest.mark.parametrize("after", ["", ";", "=", "x", "1", " ", "&"])
def test_every_legacy_name_is_seen(after: str) -> None:
    for name in _LEGACY_NAMES:
        _starts_every_reference("a=1&" + name + after)
        assert html_view._REFERENCE.search("&" + name + after) is not None, name


def test_bare_ampersands_are_left_alone() -> None:
    """What the shortcut is for: a link's query with bare "&" is not decoded."""
    for value in ("?u=a&utm_source=l&utm_medium=e", "a&b", "&", "x&_y", "&;"):
        assert html_view._REFERENCE.search(value) is None, value
    for value in ("&amp;", "&#38", "&copy", "&notin;", "&AElig", "&hellip;", "&x;"):
        assert html_view._REFERENCE.search(value) is not None, value


@_SETTINGS
@given(ATTRIBUTE_LISTS)
def test_the_attribute_pattern_reads_what_the_tokenizers_reads(raw: str) -> None:
    assert html_view._ATTRIBUTES.findall(raw) == _ATTRIBUTE.findall(raw), raw


@_SETTINGS
@given(ATTRIBUTE_LISTS, VALUES)
def test_attributes_are_read_by_definition(raw: str, value: str) -> None:
    for attributes in (raw, raw + ' href="' + value + '"', raw + " src=" + value.replace(" ", "")):
        assert html_view._attributes(attributes) == _reference_attributes(attributes), attributes
