"""The HTML view's quiet regions, read in bulk, give the view of one step a tag.

:meth:`milter.text.html_view._Reader.region` reads a run of text and well-formed tags
that change no state with a few compiled operations (a search for the next stop, a split
into text and tags, a join, one decoding) instead of one ``_STEP`` match a tag. Checked
here, on markup aimed at the region's edges (character references cut by a tag, block
and inline tags in any case, ">" and stops inside quoted values, URL attributes, careful
names, hidden head/template text around a region, tags cut by the region's end): the
view with regions is the view read one step a tag (the same text and the very same
events), also with small windows that cut the regions anywhere, and both give what the
token definitions give. Deliberately broken regions are caught.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.text import html_view
from milter.text.html import _FAST_TAG
from tests.text.test_html_view import _corpus_htmls, _same

_SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_PIECES = (
    # character references, whole and cut by a tag
    "&am",
    "p;",
    "&amp",
    ";",
    "&#6",
    "5;",
    "&#x4",
    "&copy",
    "&",
    "&lt;b&gt;",
    "=",
    "x",
    " ",
    "\n",
    "\t",
    "é",
    # inline and block tags, any case
    "<b>",
    "</b>",
    "<B>",
    "<P>",
    "</p>",
    "<Td>",
    "<TR >",
    "<br/>",
    "<bR/>",
    "<DIV class=x>",
    "<li>",
    "<H6>",
    "<table>",
    "<tablex>",
    "<o:p>",
    # ">" and stops inside quoted values, "<" in names
    '<span title="a>b">',
    "<i x='<!--'>",
    '<u y="<p>">',
    "<s z='</a>'>",
    '<b title="&amp;">',
    "<a<b>",
    # link tags and URL attributes
    "<a href=https://e.fr/>",
    "<A HREF='https://e.fr/?a=1&amp;b=2'>",
    "</a>",
    "</A>",
    "</a x=1>",
    "<img src=https://i.fr/i.png alt='Alt'>",
    "<IMG SRC=x>",
    "<img>",
    "<img/>",
    "<IMG />",
    "<meta\t/>",
    "</img src=x>",
    "</span data-src=https://d.fr/ />",
    "<A/HREF=x>",
    "<meta http-equiv=refresh content='0;url=https://m.fr/'>",
    "<td background=https://b.fr/>",
    "<td bac\u212aground=https://k.fr/>",
    "<td \u017frc=x>",
    "<v:roundrect href=https://v.fr/>",
    "<form action=https://f.fr/>",
    "<input formaction=/f>",
    "<span data-src=https://d.fr/>",
    '<span title="href">',
    "<link href=https://l.fr/>",
    "<area href=https://ar.fr/ alt=zone>",
    "<base href='https://b.fr/d/'>",
    # careful names (hidden text, raw text, foreign content) and names like them
    "<head>",
    "</head>",
    "<HEAD >",
    "<template>",
    "</TEMPLATE>",
    "<body>",
    "<Body x=1>",
    "<title>",
    "</title>",
    "<SCRIPT>",
    "</script>",
    "<style>",
    "</Style>",
    "<svg>",
    "</SVG>",
    "<math>",
    "<textarea>",
    "</textarea>",
    "<xmp>",
    "<headers>",
    "<bodyx>",
    "<noscript>",
    # other markup, text "<", tags that run to the end
    "<!--c-->",
    "<!--[if mso]>",
    "<![endif]-->",
    "<![CDATA[",
    "]]>",
    "</>",
    "<?x>",
    "</1>",
    "<!x>",
    "a<3",
    "<",
    "< b",
    '<a href="un',
    "<b ",
    # what the text URL scan reads
    "https://t.fr/p ",
    "www.w.fr",
)
MARKUP = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
# Runs of quiet tags long enough for a region, between the pieces above.
_QUIET_RUN = st.lists(
    st.sampled_from(["<b>", "x", "</b>", "<P>", "&amp;", "<td style='a'>", "<a href=x>", "</a>"]),
    min_size=4,
    max_size=12,
).map("".join)
RUNS = st.lists(st.one_of(st.sampled_from(_PIECES), _QUIET_RUN), max_size=12).map("".join)


@contextmanager
def _one_step_a_tag() -> Iterator[None]:
    """No region is ever worth reading: the step path alone."""
    with mock.patch.object(html_view, "_REGION_MIN_TAGS", 1 << 60):
        yield


def _agrees(doc: str) -> None:
    """The view with regions is the view of one step a tag, with and without events."""
    bulk = html_view._read(doc, keep_events=True)
    text_only = html_view._read(doc, keep_events=False)
    with _one_step_a_tag():
        steps = html_view._read(doc, keep_events=True)
        steps_text = html_view._read(doc, keep_events=False)
    assert bulk == steps, doc
    assert text_only == steps_text, doc


@_SETTINGS
@given(MARKUP)
def test_regions_read_what_one_step_a_tag_reads(doc: str) -> None:
    _agrees(doc)
    _same(doc)


@_SETTINGS
@given(RUNS)
def test_regions_read_what_one_step_a_tag_reads_around_other_markup(doc: str) -> None:
    _agrees(doc)
    _agrees("<head><title>t</title>" + doc + "</head><body>" + doc)
    _agrees("<template>" + doc + "</template>" + doc)
    _agrees("<p>a<!--[if mso]>" + doc + "<![endif]-->b " + doc)


@_SETTINGS
@given(RUNS, st.integers(min_value=1, max_value=80), st.integers(min_value=1, max_value=5))
def test_regions_cut_anywhere_read_what_one_step_a_tag_reads(
    doc: str, window: int, fewest: int
) -> None:
    """Small windows cut regions inside text, inside tags and inside stops."""
    with (
        mock.patch.object(html_view, "_REGION_CHARS", window),
        mock.patch.object(html_view, "_REGION_MIN_TAGS", fewest),
    ):
        _agrees(doc)
        _same(doc)


@_SETTINGS
@given(st.one_of(MARKUP, RUNS))
def test_the_split_reads_the_tags_of_the_fast_pattern(doc: str) -> None:
    """``_SPLIT`` reads the well-formed tags ``_FAST_TAG`` reads, in two groups (the name
    after its end-tag slash, the attribute list with its tail), and the attribute reading
    is the same with the tail."""
    pieces = html_view._SPLIT.split(doc)
    at = 0
    for index in range(0, len(pieces) - 1, 3):
        assert _FAST_TAG.search(pieces[index]) is None, doc  # (no tag read as text)
        at += len(pieces[index])
        name, raw = pieces[index + 1], pieces[index + 2]
        fast = _FAST_TAG.match(doc, at)
        if name is None:  # a tag that runs to the end: all the rest, not read here
            assert fast is None, doc
            assert pieces[index + 3] == "", doc
            assert doc[at + 1 : at + 3].lstrip("/")[:1].isalpha()
            return
        assert fast is not None, doc
        assert fast.end() == at + len(name) + len(raw) + 2, doc
        slash, fast_name, attrs, tail = fast.groups()
        assert (name, raw) == (slash + fast_name, attrs + tail), doc
        assert html_view._attributes(raw) == html_view._attributes(attrs), doc
        at = fast.end()


def test_regions_read_the_benchmark_corpus_in_bulk() -> None:
    """Equal to one step a tag on every corpus part, and most tags read in regions."""
    htmls = _corpus_htmls()
    tags = steps = 0
    original = html_view._STEP

    class Counting:
        def finditer(self, doc: str, pos: int) -> Iterator[object]:
            nonlocal steps
            for found in original.finditer(doc, pos):
                steps += 1
                yield found

    for doc in htmls:
        _agrees(doc)
        tags += sum(1 for _ in html_view._SPLIT.finditer(doc))
    with mock.patch.object(html_view, "_STEP", Counting()):
        for doc in htmls:
            html_view._read(doc, keep_events=True)
    assert steps * 5 < tags, (steps, tags)


# Broken regions, each a change of one line of ``_Reader.region``: the checks above catch
# every one of them on these documents.
_MUTANTS = {
    "block tags read as inline": (
        "spread[1::2] = separators",
        "spread[1::2] = [' '] * count",
    ),
    "the region decoded before it is split": (
        "pieces = _SPLIT.split(doc[start:end])",
        "pieces = _SPLIT.split(_html.unescape(doc[start:end]))",
    ),
    "text events not decoded": ("if plain:", "if True:"),
    "visible text decoded without its separators": (
        "self.parts.append(text if plain else _html.unescape(text))",
        'self.parts.append(_html.unescape("".join(texts)))',
    ),
    "the text after the last tag kept when the window cuts it": (
        "end -= len(pieces[-1])",
        "pass",
    ),
    "a tag cut by the region's end not left out": (
        "if len(pieces) > 1 and pieces[-3] is None:",
        "if False:",
    ),
    "URL words not looked for": (
        "or (lower_search(raw.lower()) if raw.isascii() else search(raw)) is not None",
        "or False",
    ),
    "every start tag with attributes an event": (
        "(name in _LINK_ATTR_TAGS and raw.strip(_TAIL_CHARS))",
        "True",
    ),
    "a tail alone read as an attribute": (
        "(name in _LINK_ATTR_TAGS and raw.strip(_TAIL_CHARS))",
        "name in _LINK_ATTR_TAGS",
    ),
    "end tags with a URL word read as start tags": ('and name[0] != "/"', ""),
    "names written in upper case not lower-cased": (
        "names = list(map(str.lower, names))",
        "pass",
    ),
    "non-ASCII attributes searched in lower case": (
        "if raw.isascii() else search(raw)",
        "if True else search(raw)",
    ),
    "img and meta not link tags without a URL word": (
        "(name in _LINK_ATTR_TAGS and raw.strip(_TAIL_CHARS))",
        "False",
    ),
    "end tags of anchors not events": ("else _A_END\n", "else None\n"),
    "hidden text shown": ("if self.hidden:", "if False:"),
}
_MUTANT_DOCS = [
    "<p>un</p><div>deux</div><b>trois</b><i>x</i>",
    "<b>&am</b>p;<i>x</i><b>&lt;i&gt;</b>",
    "<a href=https://e.fr/>&amp;co</a> <b>x</b><i>y</i>",
    "<b>x</b><i>y</i><span data-src=https://d.fr/>z</span><u>w</u><td style=x>",
    "<b>x</b><i>y</i><td \u017frc=x><u>w</u>",
    "<b>x</b><i>y</i><img alt=Alt><u>w</u><a href=https://e.fr/><img alt=Logo></a>",
    "<b>x</b><i>y</i><a href=https://e.fr/>un</a> deux <a href=https://f.fr/>trois</a>",
    "<b>x</b><i>y</i><img/><u>w</u><meta /><img alt=A/>",
    "<b>x</b><i>y</i></span data-src=https://d.fr/><u>w</u></img src=x>",
    "<B>x</B><I>y</I><P>z</P><A HREF=https://e.fr/>w</A><IMG SRC=https://i.fr/>",
    "<head><b>x</b><i>y</i><u>z</u><s>w</s></head><body>vu",
    "<b>x</b><i>y</i><u>z</u><s>w</s> https://t.fr/un-lien-assez-long-pour-la-fenetre",
    "<b>x</b><i>y</i><u>z</u><s>w</s><a href=https://e.fr/un-lien-assez-long>lien</a>",
]


def _mutant(change: tuple[str, str]) -> Callable[..., tuple[int, int]]:
    source = textwrap.dedent(inspect.getsource(html_view._Reader.region))
    old, new = change
    assert source.count(old) == 1, old
    namespace: dict[str, object] = {}
    exec(source.replace(old, new), vars(html_view), namespace)
    region = namespace["region"]
    assert callable(region)
    return region


def _failures(region: Callable[..., tuple[int, int]]) -> list[tuple[int, str]]:
    """The (window, document) pairs on which the checks fail with this region."""
    failed = []
    with mock.patch.object(html_view._Reader, "region", region):
        for window in (html_view._REGION_CHARS, 40):
            with mock.patch.object(html_view, "_REGION_CHARS", window):
                for doc in _MUTANT_DOCS:
                    try:
                        _agrees(doc)
                        _same(doc)
                    except (AssertionError, TypeError):  # (a broken region may raise)
                        failed.append((window, doc))
    return failed


@pytest.mark.parametrize("name", sorted(_MUTANTS))
def test_a_broken_region_is_caught(name: str) -> None:
    assert _failures(_mutant(_MUTANTS[name])), name


def test_the_unbroken_region_passes_the_mutant_documents() -> None:
    assert _failures(_mutant(("size = len(doc)", "size = len(doc)"))) == []
