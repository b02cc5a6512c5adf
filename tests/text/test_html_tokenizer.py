"""The one HTML tokenizer: html5lib tokenizer data, the #17 cases, offsets, linear cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from milter.text.html import Comment, Tag, Text, tokenize
from milter.text.html_view import visible_text

_DATA = json.loads((Path(__file__).parent / "data" / "html5lib_tokenizer.json").read_text())


def _as_html5lib(doc: str) -> list[list[Any]]:
    """Tokens in html5lib-tests' output format (adjacent characters merged)."""
    out: list[list[Any]] = []
    for token in tokenize(doc):
        if isinstance(token, Tag):
            if token.end_tag:
                out.append(["EndTag", token.name])
            else:
                out.append(["StartTag", token.name, {a.name: a.value for a in token.attrs}])
        elif isinstance(token, Comment):
            out.append(["Comment", token.data])
        elif out and out[-1][0] == "Character":
            out[-1][1] += token.data
        else:
            out.append(["Character", token.data])
    return out


@pytest.mark.parametrize("case", _DATA["tests"], ids=lambda c: c["description"])
def test_html5lib_tokenizer_data(case: dict[str, Any]) -> None:
    assert _as_html5lib(case["input"]) == case["output"]


def _hrefs(doc: str) -> list[str]:
    return [
        a.value
        for t in tokenize(doc)
        if isinstance(t, Tag) and not t.end_tag
        for a in t.attrs
        if a.name in ("href", "xlink:href")
    ]


@pytest.mark.parametrize(
    ("doc", "hrefs"),
    [
        ('<a class="x"href="https://evil.fr/">', ["https://evil.fr/"]),
        ("<a/href=https://evil.fr/>", ["https://evil.fr/"]),
        ('<svg><a xlink:href="https://evil.fr/"><text>x</text></a></svg>', ["https://evil.fr/"]),
        ('<!-- hidden --!><a href="https://evil.fr/">', ["https://evil.fr/"]),
        ('<!-- <a href="https://no.fr/"> -->', []),
        ('<![endif]><a href="https://evil.fr/">', ["https://evil.fr/"]),
        ('<![end if]><a href="https://evil.fr/">', ["https://evil.fr/"]),
        ('<!--[if mso]><a href="https://mso.fr/">x</a><![endif]-->', ["https://mso.fr/"]),
        (
            '<script>"<a href=https://no.fr/>"</script><a href="https://yes.fr/">',
            ["https://yes.fr/"],
        ),
        ('<a href="https://cut.fr/', []),  # a tag cut by the end is dropped, as browsers do
    ],
)
def test_links_a_browser_follows(doc: str, hrefs: list[str]) -> None:
    assert _hrefs(doc) == hrefs


def test_offsets_point_into_the_source() -> None:
    doc = 'x<!--[if mso]><a  href="https://mso.fr/">Mso</a><![endif]--><b>y</b>'
    for token in tokenize(doc):
        if isinstance(token, Tag) and token.name == "a" and not token.end_tag:
            attr = token.attrs[0]
            assert doc[attr.start : attr.end] == 'href="https://mso.fr/"'
            assert doc[attr.value_start : attr.value_end] == "https://mso.fr/"
            assert doc[token.start : token.end] == '<a  href="https://mso.fr/">'
        if isinstance(token, Text):
            assert doc[token.start : token.end] == token.raw


def test_outlook_conditional_text_is_visible_text() -> None:
    doc = "<p>Bonjour</p><!--[if mso]><p>Votre espace ameli</p><![endif]--><!-- note -->"
    text = visible_text(doc)
    assert "Votre espace ameli" in text
    assert "note" not in text


def test_never_closed_tags_are_linear() -> None:
    """1 MB of never-closed ``<a`` / ``<a href=`` makes few tokens, each char read once."""
    for unit in ("<a", "<a href=", '<a href="x" ', "<!--", "<![", "<a href='"):
        doc = "<p>lure</p>" + unit * (1_000_000 // len(unit))
        tokens = list(tokenize(doc))
        assert len(tokens) <= 4, unit
    many = '<a href="https://e.fr/">x</a>' * 20_000
    assert sum(1 for _ in tokenize(many)) == 60_000
