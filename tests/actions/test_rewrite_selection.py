"""The link rewriter reads only the attributes it needs (``tokenize(doc, only=…)``), and
what it writes is byte for byte what it writes from the full reading of every tag.

Generated markup mixes the pieces where tokenizers differ (``tests/text/html_markup``)
with link tags written in messy ways: unquoted values, duplicate attributes, ``<`` and
``>`` inside quoted values, upper-case names, entities, comments, CDATA, Outlook
conditional comments, titles, forms and ``formaction``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.actions.defang import LINK_ATTRIBUTES, LinkRewrite, _rewrite_html
from milter.actions.redirect import RedirectSigner
from milter.actions.targets import LinkTargets
from milter.text.html import Selection, Tag, Token, tokenize
from tests.text.html_markup import MARKUP, PIECES

_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_URLS = [
    "https://evil.fr/p",
    "HTTPS://EVIL.FR/",
    "https://evil.fr/?a=1&amp;b=2",
    "https://ev&#105;l.fr/x",
    "https://evil.fr/a<b>c",
    "https://ok.fr/",
    "https://ok.fr/?u=https://evil.fr/",
    "/relative",
    "",
]
_NAMES = [
    "href",
    "HREF",
    "Href",
    "xlink:href",
    "XLINK:HREF",
    "action",
    "ACTION",
    "formaction",
    "FormAction",
    "title",
    "TITLE",
    "class",
    "style",
    "src",
    "alt",
    "data-href",
    "hrefx",
    "=href",
]


def _value(url: str) -> st.SearchStrategy[str]:
    return st.sampled_from([f'"{url}"', f"'{url}'", url, f'"{url}', f" = '{url}'"])


_ATTR = st.tuples(
    st.sampled_from(_NAMES),
    st.one_of(st.just(""), st.sampled_from(_URLS).flatmap(_value).map(lambda v: "=" + v)),
).map("".join)
_LINK_TAG = st.tuples(
    st.sampled_from(["<a", "<A", "<area", "<form", "<FORM", "<button", "<base", "<link"]),
    st.sampled_from(["<img", "<v:roundrect", "<div", "<svg><a", "<math><a", "<p"]),
    st.lists(st.tuples(st.sampled_from([" ", "\t", "/", "", "\n "]), _ATTR), max_size=5),
    st.sampled_from([">", "/>", " >", ""]),
).map(lambda t: (t[0] if len(t[2]) % 2 else t[1]) + "".join(a + b for a, b in t[2]) + t[3])
_TEXT = st.sampled_from(
    [
        "voir https://evil.fr/x ",
        "evil.fr",
        "<!-- <a href=https://evil.fr/> -->",
        "<![CDATA[https://evil.fr/c]]>",
        "<!--[if mso]>",
        "<![endif]-->",
        "<title>https://evil.fr/t</title>",
        "<textarea><a href=https://evil.fr/></textarea>",
        "<script>x='<a href=https://evil.fr/>'</script>",
        "</a>",
        "&amp;",
        "&lt;a href=https://evil.fr/&gt;",
    ]
)
DOCUMENTS = st.lists(st.one_of(_LINK_TAG, _TEXT, st.sampled_from(PIECES)), max_size=25).map("".join)

_TARGETS = [
    LinkTargets.of(hosts=["evil.fr"]),
    LinkTargets.of(urls=["https://ok.fr/"]),
    LinkTargets.of(hosts=["evil.fr"]).with_every_link(),
]
_SIGNER = RedirectSigner.for_message("https://tocsin.example/r", b"k" * 32, ["a@b.example"])
_REWRITES = [LinkRewrite(t) for t in _TARGETS] + [
    LinkRewrite(t.keeping("https://tocsin.example/r"), _SIGNER) for t in _TARGETS
]


def _picked(doc: str, only: Selection) -> list[Token]:
    """The full reading, each tag's attributes as ``only`` keeps them, the tags left
    with none dropped unless ``only.bare_tags`` (the definition)."""
    out: list[Token] = []
    for token in tokenize(doc):
        kept = token
        if isinstance(token, Tag):
            kept = token._replace(attrs=only.pick(token.attrs))
            if not kept.attrs and not only.bare_tags:
                continue
        out.append(kept)
    return out


def _same_rewrite(doc: str) -> None:
    for rewrite in _REWRITES:
        assert _rewrite_html(doc, rewrite) == _rewrite_html(doc, rewrite, None), (doc, rewrite)
    assert list(tokenize(doc, LINK_ATTRIBUTES)) == _picked(doc, LINK_ATTRIBUTES), doc


@_SETTINGS
@given(DOCUMENTS)
def test_rewrite_reading_only_link_attributes_is_the_full_rewrite(doc: str) -> None:
    _same_rewrite(doc)


@_SETTINGS
@given(MARKUP)
def test_rewrite_reading_only_link_attributes_on_tokenizer_markup(doc: str) -> None:
    _same_rewrite(doc)


_SELECTIONS = [
    LINK_ATTRIBUTES,
    Selection({"href", "xlink:href", "action", "formaction"}, also={"title"}),
    Selection({"href"}),
    Selection({"src"}, bare_tags=False),
    Selection({"xlink:href"}, also={"a", "title"}),
    Selection({"k"}, also={"href"}),  # the Kelvin sign's lower case is "k"
    Selection({"=x", "d-1"}),
    Selection({"é"}, also={"x'y"}),
]


@_SETTINGS
@given(st.sampled_from(_SELECTIONS), st.one_of(MARKUP, DOCUMENTS))
def test_selected_attributes_are_those_of_the_full_reading(only: Selection, doc: str) -> None:
    """Same tokens, same offsets; each tag's attributes (values, spans) are the full
    reading's, filtered by the selection's definition."""
    assert list(tokenize(doc, only)) == _picked(doc, only), doc


def test_a_selection_keeps_the_named_attributes_of_tags_that_have_a_key() -> None:
    doc = (
        '<a class=c TITLE="t" HREF=https://e.fr/?a=1&amp;b=2 href="x">'
        '<img src=i title=u><form Action="/f"><div title="&lt;">\u212a=1'
    )
    every = Selection({"href", "xlink:href", "action", "formaction"}, also={"title"})
    got = [t for t in tokenize(doc, every) if isinstance(t, Tag)]
    assert [(t.name, [(a.name, a.value) for a in t.attrs]) for t in got] == [
        ("a", [("title", "t"), ("href", "https://e.fr/?a=1&b=2")]),
        ("img", []),
        ("form", [("action", "/f")]),
        ("div", []),
    ]
    assert [t for t in tokenize(doc, LINK_ATTRIBUTES) if isinstance(t, Tag)] == [
        got[0],
        got[2],
    ]
    anchor = got[0].attrs[1]
    assert doc[anchor.value_start : anchor.value_end] == "https://e.fr/?a=1&amp;b=2"
    kelvin = next(t for t in tokenize("<p \u212a=1 j=2>", Selection({"k"})) if isinstance(t, Tag))
    assert [a.name for a in kelvin.attrs] == ["k"]
