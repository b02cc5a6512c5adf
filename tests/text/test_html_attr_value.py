"""Character references in attribute values: the narrow pattern that only hands the
decoder references that can change gives what the broad one gives."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.text.html import _attr_value, _decode_attr_ref

# Every "&…" the attribute value state may read as a reference (the pattern before).
_BROAD = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")

_VALUES = st.lists(
    st.sampled_from(
        [
            "&",
            "amp",
            "AMP",
            "copy",
            "not",
            "notin",
            "notit",
            "ampx",
            "utm",
            "lt",
            "gt",
            "quot",
            "nbsp",
            "Aacute",
            "AElig",
            ";",
            "=",
            "#",
            "x",
            "X",
            "1",
            "9",
            "f",
            "_",
            "é",
            " ",
            "?u=a",
            "&amp;",
            "&#",
            "&#x",
            "&not",
            "&copy",
            "&amp",
            "&Aacute",
            "&nbsp",
            "&utm",
        ]
    ),
    max_size=14,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_VALUES)
def test_attribute_values_decode_as_with_the_broad_pattern(value: str) -> None:
    assert _attr_value(value) == _BROAD.sub(_decode_attr_ref, value), value


def test_references_in_a_tracked_link() -> None:
    assert _attr_value("https://e.fr/?u=1&utm_source=x&copy=2&amp;b&not;c&notin d") == (
        "https://e.fr/?u=1&utm_source=x&copy=2&b\u00acc&notin d"
    )
    assert _attr_value("&copy_&AElig &ampx &#65;&#x42 &not") == "\u00a9_\u00c6 &ampx AB \u00ac"
