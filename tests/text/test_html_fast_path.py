"""The compiled fast path of the HTML tokenizer reads exactly what the state machine reads.

``tokenize`` consumes well-formed tags with one compiled pattern and leaves everything
else to the state machine; ``reference_tokenize`` is the state machine alone. Same
tokens, same offsets, on generated markup built from the pieces where tokenizers differ.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.text.html import Tag, Text, reference_tokenize, tokenize, tokens
from tests.text.html_markup import CHARS, MARKUP, PIECES

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(doc: str) -> None:
    fast = list(tokenize(doc))
    assert fast == list(reference_tokenize(doc)), doc
    for token in fast:
        if isinstance(token, Text) and token.kind == "data":
            assert doc[token.start : token.end] == token.raw or token.start < 0


@_SETTINGS
@given(MARKUP)
def test_fast_path_gives_the_reference_tokens(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(CHARS)
def test_fast_path_gives_the_reference_tokens_on_raw_characters(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
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
