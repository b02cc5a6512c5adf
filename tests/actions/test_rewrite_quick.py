"""The rewriter's quick reading (``_quick_tokens``: quiet runs skipped in one compiled
match, the rest read by the tokenizer from a fresh start) gives the tokens the rewriter
acts on exactly as ``tokenize(doc, LINK_ATTRIBUTES)`` gives them, and the URL scan from
each ``://`` (``_url_matches``) the matches of ``_URL.finditer``.

Documents: the tokenizer's markup pieces, the rewriter's messy link tags, and runs of
ordinary tags and text around the constructs that change the tokenizer's state (raw text,
RCDATA, svg/math, comments of every kind, Outlook conditional comments, tags cut by the
end, a ``<`` that starts no markup).
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.harness.corpus import generate
from milter.actions import defang
from milter.actions.defang import (
    _URL,
    LINK_ATTRIBUTES,
    LinkRewrite,
    _quick_tokens,
    _rewrite_html,
    _url_matches,
)
from milter.actions.redirect import RedirectSigner
from milter.actions.targets import LinkTargets
from milter.text.html import Tag, Text, Token, tokenize
from tests.actions.test_rewrite_selection import DOCUMENTS
from tests.text.html_markup import MARKUP, PIECES

_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_QUIET_PIECES = [
    '<td style="padding:12px">',
    "</td>",
    "<tr>",
    "</tr>\n",
    '<img src="https://img.e.fr/1.jpg" alt="">',
    "<IMG SRC=https://img.e.fr/2.jpg>",
    '<p class="x" data-href="https://d.fr/">',
    "<div hrefx=1 actions=2 =href=3>",
    "<span title='a>b'>",
    "<p/>",
    "</a href=https://e.fr/>",
    "Lire la suite ",
    "é à ç ",
    "domaine.fr/page ",
    "ratio 3:2 ",
    "x://y",
    "https://t.fr/p ",
    "HTTPS://T.FR/Q",
    "a < b ",
    "<3",
    "<!DOCTYPE html>",
    "<!-- commentaire -->",
    "<!-- <a href=https://e.fr/> -->",
    "<!---->",
    "<!x>",
    "<?php ?>",
    "</1>",
    "</>",
    "<!--[if mso]><a href=https://mso.fr/>x</a><![endif]-->",
    "<!--[if !mso]><!-->",
    "<!--<![endif]-->",
    "<style>a{b:c}</style>",
    "<STYLE>p{}</Style >",
    '<style>p{}</style title="https://e.fr/">',
    "<script>x</script src=https://e.fr/s.js>",
    "<Textarea>t</Textarea x=https://e.fr/>",
    "<title>t</TITLE data='https://e.fr/'>",
    "<title>https://t.fr/t</title>",
    "<textarea><a href=https://e.fr/></textarea>",
    "<script>x='<a href=https://e.fr/>'</script>",
    "<svg><a xlink:href=https://s.fr/>",
    "</svg>",
    "<math>",
    "<![CDATA[https://c.fr/]]>",
    "<![CDATA[<a href=https://e.fr/>]]>",
    "<!--[x https://e.fr/ -->",
    "<!--[ -->",
    "<!--[IF mso]><a href=https://e.fr/m>m</a><![ENDIF]-->",
    "<!--[ifx https://e.fr/i -->",
    "<!--->",
    "</>https://e.fr/d",
    "<!--[if\u0130 x]><a href=https://e.fr/j>j</a><![endif]-->",
    "<plaintext>",
    "<a href=https://e.fr/a>",
    '<a\r\nhref="https://click.e.fr/l/1?u=a&amp;utm_source=l"\r\nstyle="c">',
    "<A HREF='https://e.fr/b' TITLE=t>",
    "<form action=/f>",
    "<button formaction=https://f.fr/>",
    "<area href=https://ar.fr/>",
    "<a xlin\u212a:href=https://k.fr/>",
    "<a href=https://e.fr/c",
    '<a href="https://e.fr/never-closed',
    "<",
    "</",
]
QUIET_DOCUMENTS = st.lists(st.sampled_from(_QUIET_PIECES + list(PIECES)), max_size=30).map("".join)


def _acted_on(tokens: list[Token]) -> list[Token]:
    """What the rewriter reads: start tags with a link attribute, and the text tokens that
    can change when the document holds none of the target hosts (those with ``://``)."""
    return [
        t
        for t in tokens
        if (isinstance(t, Tag) and not t.end_tag and t.attrs)
        or (isinstance(t, Text) and t.kind in ("data", "rcdata", "cdata") and "://" in t.raw)
    ]


def _same_tokens(doc: str) -> None:
    quick = _acted_on(list(_quick_tokens(doc)))
    assert quick == _acted_on(list(tokenize(doc, LINK_ATTRIBUTES))), doc


_SIGNER = RedirectSigner.for_message("https://tocsin.example/r", b"k" * 32, ["a@b.example"])
_REWRITES = [
    LinkRewrite(LinkTargets().with_every_link()),
    LinkRewrite(LinkTargets.of(urls=["https://e.fr/a", "https://t.fr/p"])),
    LinkRewrite(LinkTargets.of(hosts=["nowhere.example"]).with_every_link()),
    LinkRewrite(LinkTargets().with_every_link().keeping("https://tocsin.example/r"), _SIGNER),
]


def _same_rewrite(doc: str) -> None:
    _same_tokens(doc)
    for rewrite in _REWRITES:  # (no target host in the text: the quick reading is used)
        assert _rewrite_html(doc, rewrite) == _rewrite_html(doc, rewrite, None), (doc, rewrite)


@_SETTINGS
@given(QUIET_DOCUMENTS)
def test_quick_reading_is_the_token_reading(doc: str) -> None:
    _same_rewrite(doc)


@_SETTINGS
@given(st.one_of(MARKUP, DOCUMENTS))
def test_quick_reading_is_the_token_reading_on_tokenizer_markup(doc: str) -> None:
    _same_rewrite(doc)


@_SETTINGS
@given(st.lists(st.sampled_from(_QUIET_PIECES), max_size=8).map("".join))
def test_quick_reading_inside_a_newsletter(piece: str) -> None:
    _same_rewrite(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>L</title>'
        "<style>td{}</style></head><body><table><tr><td>" + piece + "</td></tr></table>"
        '<p><a href="https://e.fr/x">x</a> ' + piece + "</p></body></html>"
    )


def test_quick_reading_on_the_benchmark_corpus() -> None:
    htmls = []
    for message in generate(60, seed=5):
        msg = email.message_from_bytes(message.raw, policy=email.policy.default)
        for part in msg.walk():
            if part.get_content_type() == "text/html":
                htmls.append(str(part.get_content()))  # type: ignore[attr-defined]
    assert len(htmls) > 20
    for doc in htmls:
        _same_rewrite(doc)


def test_a_wrong_quick_reading_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quiet pattern that skipped link tags too would be seen by the comparison."""
    doc = "<p>a</p><a href=https://e.fr/>x</a><p>b</p>"
    reference = _acted_on(list(tokenize(doc, LINK_ATTRIBUTES)))
    assert [t.start for t in reference if isinstance(t, Tag)] == [8]
    assert _acted_on(list(_quick_tokens(doc))) == reference
    skip_all = re.compile(r"(?:[^<]*+<[^>]*+>)*+(?:(x)(x)(x)(x)(x))?")  # the same groups
    monkeypatch.setattr(defang, "_QUIET_THEN_TAG", skip_all)
    assert _acted_on(list(_quick_tokens(doc))) == []


_URL_TEXT = st.lists(
    st.sampled_from(
        [
            "http",
            "https",
            "HTTPS",
            "ftp",
            "fTp",
            "http\u017f",  # long s: case-folds to "s" in the pattern
            "xhttp",
            "_ftp",
            "hxxps",
            "://",
            ":/",
            ":",
            "/",
            "//",
            "e.fr",
            "a",
            " ",
            "\n",
            "<",
            '"',
            "(",
            ".",
            "é",
            "1",
        ]
    ),
    max_size=25,
).map("".join)


@_SETTINGS
@given(_URL_TEXT)
def test_url_scan_from_each_separator_is_the_pattern_scan(text: str) -> None:
    expected = [m.span() for m in _URL.finditer(text)]
    assert [m.span() for m in _url_matches(text)] == expected, text


def test_url_scan_finds_nested_and_adjacent_urls() -> None:
    text = "voir https://a.fr/x?u=http://b.fr/ et ftp://c.fr,HTTP://D.FR. xhttp://no.fr"
    assert [m.group(0) for m in _url_matches(text)] == [
        "https://a.fr/x?u=http://b.fr/",
        "ftp://c.fr,HTTP://D.FR.",
    ]
