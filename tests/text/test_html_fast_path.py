"""The compiled fast path of the HTML tokenizer reads exactly what the state machine reads.

``tokenize`` consumes well-formed tags with one compiled pattern and leaves everything
else to the state machine; ``reference_tokenize`` is the state machine alone. Same
tokens, same offsets, on generated markup built from the pieces where tokenizers differ.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.text import html as html_module
from milter.text.html import Tag, Text, reference_tokenize, tokenize, tokens

_PIECES = (
    "<",
    ">",
    "/",
    "/>",
    "</",
    "=",
    '"',
    "'",
    " ",
    "\t",
    "\n",
    "\f",
    "\r",
    "\x00",
    "a",
    "A",
    "b",
    "href",
    "HREF",
    "xlink:href",
    "src",
    "é",
    "x",
    "1",
    "-",
    "<a",
    "<a ",
    "</a>",
    "<A HREF=",
    "<p>",
    "<br/>",
    "<img src=x alt='y'>",
    "<svg>",
    "</svg>",
    "<math>",
    "</math>",
    "<![CDATA[",
    "]]>",
    "<script>",
    "</script>",
    "<style>",
    "</style ",
    "<title>",
    "</title>",
    "<textarea>",
    "</textarea>",
    "<plaintext>",
    "<xmp>",
    "</xmp>",
    "<!--",
    "-->",
    "--!>",
    "<!-->",
    "<!--->",
    "<!",
    "<?",
    "<!DOCTYPE html>",
    "<!--[if mso]>",
    "<![endif]-->",
    "<![endif]>",
    "<![end if]>",
    "&amp;",
    "&copy",
    "&copy=",
    "&#65;",
    "&#x41",
    "&notanentity;",
    "&",
    '="',
    "=''",
    "= ",
    "==",
    'a="1"',
    "b='2'",
    "c=3",
    "d",
    'e=""f=1',
)
_SEP = st.text(alphabet="\t\n\f\r /", max_size=3)
_WS = st.text(alphabet="\t\n\f\r ", max_size=2)
_NAME = st.sampled_from(["a", "A", "href", "xlink:href", "=x", "d-1", "svg", "é", "x'y", 'x"'])
_VALUE = st.sampled_from(['"v"', "'v'", "v", "", '"un', "'un", "v/", "a&amp;b", '"a>b"', "&copy="])
_ATTR = st.tuples(
    _NAME,
    st.one_of(st.just(""), st.tuples(_WS, _WS, _VALUE).map(lambda t: t[0] + "=" + t[1] + t[2])),
).map("".join)
# A tag built the way the tag states read one: "<" or "</", a name, attributes between
# separators (or none), trailing separators, then ">", "/>" or the end of the piece.
_TAG = st.tuples(
    st.sampled_from(["<", "</"]),
    st.sampled_from(["a", "P", "svg", "math", "script", "title", "br", "v:rect", "a1"]),
    st.lists(st.tuples(_SEP, _ATTR).map("".join), max_size=4).map("".join),
    _SEP,
    st.sampled_from([">", "/>", "", " >"]),
).map("".join)
_MARKUP = st.lists(st.one_of(st.sampled_from(_PIECES), _TAG), max_size=30).map("".join)
_CHARS = st.text(alphabet="<>/=\"' \tab!-?[]&;#x:", max_size=60)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(doc: str) -> None:
    fast = list(tokenize(doc))
    assert fast == list(reference_tokenize(doc)), doc
    for token in fast:
        if isinstance(token, Text) and token.kind == "data":
            assert doc[token.start : token.end] == token.raw or token.start < 0


@_SETTINGS
@given(_MARKUP)
def test_fast_path_gives_the_reference_tokens(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(_CHARS)
def test_fast_path_gives_the_reference_tokens_on_raw_characters(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_fast_path_inside_a_longer_document(piece: str) -> None:
    """The same piece at an offset, after a tag the fast path reads and before more text."""
    _same('<td class="c"><a href="https://e.fr/">' + piece + "</a> fin")


def test_cached_tokens_are_shared_and_equal_to_a_fresh_reading() -> None:
    doc = '<p>Bonjour <a href="https://e.fr/?a=1&amp;b=2">lien</a></p>'
    first, second = tokens(doc), tokens((doc + " ")[:-1])  # an equal string, another object
    assert first is second
    assert list(first) == list(reference_tokenize(doc))
    tag = next(t for t in first if isinstance(t, Tag) and t.name == "a")
    assert tag.get("href") == "https://e.fr/?a=1&b=2"


def test_documents_with_many_tokens_are_streamed_past_the_kept_count() -> None:
    doc = "<b>x</b>" * 6_000  # 48 KB, 18,000 tokens: more than are kept
    stream = tokens(doc)
    assert not isinstance(stream, tuple)
    assert list(stream) == list(reference_tokenize(doc))
    assert not isinstance(tokens(doc), tuple)  # not cached either


def test_large_documents_are_streamed_not_kept() -> None:
    doc = "<b>x</b>" * 40_000  # above the cached size
    stream = tokens(doc)
    assert not isinstance(stream, tuple)
    assert sum(1 for _ in stream) == 120_000


@_SETTINGS
@given(st.text(alphabet=" \t\r\f\v\u00a0\nab", max_size=40))
def test_space_runs_become_one_space_as_before(text: str) -> None:
    """The space-run pattern leaves single spaces alone; the result is the same."""
    assert html_module._SPACE_RUN.sub(" ", text) == re.sub(r"[ \t\r\f\v\u00a0]+", " ", text)
