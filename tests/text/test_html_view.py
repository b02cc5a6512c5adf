"""The one-pass HTML view gives what the token-based definitions give.

``view(doc).text`` must equal :func:`reference_visible_text` (visible text over the
tokens), and the link scan over the view's events must make the same calls to its sink,
in the same order, as over every token read by the state machine alone. Checked on
generated markup (the tokenizer's pieces plus what the link scan acts on) and on the
benchmark corpus's HTML parts.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.harness.corpus import generate
from milter.links._html import collect_links
from milter.links.extract import Link, _Full, _Sink
from milter.text import html_view
from milter.text.html import _FAST_TAG, _Tokenizer, reference_tokenize
from milter.text.html_view import (
    collapse_spaces,
    link_events,
    reference_visible_text,
    view,
    visible_text,
)
from tests.text.html_markup import CHARS, MARKUP, PIECES

_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _links(
    events: Iterable[html_view.LinkEvent], batch_text: bool = True, max_links: int = 2000
) -> tuple[dict[str, Link], bool]:
    """What the link scan of these events stores (the extractor's own sink)."""
    sink = _Sink(max_links)
    with contextlib.suppress(_Full):
        collect_links(events, sink, batch_text=batch_text)
    return sink.links, sink.truncated


def _fresh_view(doc: str) -> html_view.HtmlView:
    """The view read now (not from the cache)."""
    return html_view._read(doc, keep_events=True)


def _same(doc: str) -> None:
    fresh = _fresh_view(doc)
    assert fresh.text == reference_visible_text(doc), doc
    assert fresh.events is not None
    # the existing path: every token, one text at a time
    reference = _links(link_events(reference_tokenize(doc)), batch_text=False)
    assert _links(fresh.events) == reference, doc
    assert _links(fresh.events, max_links=2) == _links(
        link_events(reference_tokenize(doc)), batch_text=False, max_links=2
    ), doc
    assert html_view._read(doc, keep_events=False).text == fresh.text


@_SETTINGS
@given(MARKUP)
def test_view_equals_the_token_definitions(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(CHARS)
def test_view_equals_the_token_definitions_on_raw_characters(doc: str) -> None:
    _same(doc)


@_SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_view_equals_the_token_definitions_inside_a_document(piece: str) -> None:
    """Inside head, inside an anchor, inside an Outlook conditional comment."""
    _same("<html><head><title>t</title>" + piece + "</head><body>x " + piece + " y</body>")
    _same('<td class="c"><a href="https://e.fr/">' + piece + "</a> fin")
    _same("<p>a<!--[if mso]>" + piece + "<![endif]-->b " + piece)


def _corpus_htmls() -> list[str]:
    out = []
    for message in generate(120, seed=11):
        msg = email.message_from_bytes(message.raw, policy=email.policy.default)
        for part in msg.walk():
            if part.get_content_type() == "text/html":
                out.append(str(part.get_content()))  # type: ignore[attr-defined]
    return out


def test_view_equals_the_token_definitions_on_the_benchmark_corpus() -> None:
    htmls = _corpus_htmls()
    assert len(htmls) > 20
    for doc in htmls:
        _same(doc)


def test_a_wrong_view_is_caught() -> None:
    """The comparison sees a dropped text event and a changed text (a mutation check)."""
    doc = "<head><title>t</title></head><body><p>Lire https://t.fr/ <a href=https://e.fr/>ici</a>"
    fresh = _fresh_view(doc)
    assert fresh.events is not None
    links, _ = _links(fresh.events)
    assert [link.url for link in links.values()] == ["https://t.fr/", "https://e.fr/"]
    assert _links(e for e in fresh.events if not isinstance(e, str)) != (links, False)
    assert fresh.text == "Lire https://t.fr/ ici"


def test_view_is_shared_and_large_documents_keep_no_events() -> None:
    doc = "<p>a <a href='https://e.fr/'>b</a></p>"
    assert view(doc) is view((doc + " ")[:-1])
    many = "<a href=x>y</a>" * 6_000  # 18,000 link events: more than are kept
    assert view(many).events is None
    assert visible_text(many) == reference_visible_text(many)
    large = "<b>x</b>" * 40_000  # above the kept size
    assert view(large).events is None
    assert visible_text(large) == reference_visible_text(large)


@pytest.mark.parametrize(
    "doc",
    [
        "<svg><![CDATA[a&amp;<b>]]></svg> <a href=x>&amp;</a>",
        "<textarea>a&amp;b</textarea><title>no</title><script>no</script>",
        "<plaintext><a href=x>text",
        "<!--[if mso]><a href=https://o.fr/>o</a><![endif]-->",
        "<head>hidden<template>t</template>still</head>seen<body>body",
        "<a href=x><img src=y alt='Alt'>t</a><a href=z>",
    ],
)
def test_view_on_the_special_states(doc: str) -> None:
    _same(doc)


_SPACES = st.text(alphabet=" \t\r\f\v\u00a0\nab\u2003", max_size=40)


@_SETTINGS
@given(_SPACES)
def test_space_runs_become_one_space(text: str) -> None:
    """Each run of spaces (tabs, CR, FF, VT, no-break spaces) is one space; no other
    character changes (a line break or an em space stays)."""
    assert collapse_spaces(text) == re.sub(r"[ \t\r\f\v\u00a0]+", " ", text)


@_SETTINGS
@given(
    st.lists(st.tuples(st.text(alphabet="ab\n", max_size=3), st.integers(0, 9)), max_size=30),
    st.integers(0, 4),
)
def test_long_space_runs_cut_one_by_one_then_by_passes(
    runs: list[tuple[str, int]], few: int
) -> None:
    """Runs of three spaces or more (what one replace pass leaves) are cut one by one up
    to a bound, the rest by whole passes: both ways, and across the bound, give one space
    a run (the bound made small here so that generated text crosses it)."""
    text = "".join(word + " " * count for word, count in runs)
    expected = re.sub(" +", " ", text)
    original = html_view._LONG_RUNS
    try:
        html_view._LONG_RUNS = few
        assert collapse_spaces(text) == expected
    finally:
        html_view._LONG_RUNS = original
    assert collapse_spaces(text) == expected
    flood = "x   \t " * 200 + "y" + " " * 40
    assert collapse_spaces(flood) == re.sub(r"[ \t]+", " ", flood)


def _refused_tags_run_to_the_end(doc: str) -> None:
    tokenizer = _Tokenizer(doc, 0, 0)
    for found in re.finditer(r"</?[A-Za-z]", doc):
        if _FAST_TAG.match(doc, found.start()) is None:
            read = tokenizer._markup(found.start())
            assert read is not None
            assert read[1] == -1, doc


@_SETTINGS
@given(MARKUP)
def test_a_tag_the_fast_pattern_refuses_runs_to_the_end(doc: str) -> None:
    """What lets the view stop at the first refused tag without the state machine."""
    _refused_tags_run_to_the_end(doc)


@_SETTINGS
@given(CHARS)
def test_a_tag_the_fast_pattern_refuses_runs_to_the_end_on_raw_characters(doc: str) -> None:
    _refused_tags_run_to_the_end(doc)


def test_a_never_closed_tag_flood_is_read_without_the_state_machine() -> None:
    flood = "<p>avant</p>" + "<a href=" * 20_000
    assert visible_text(flood) == reference_visible_text(flood) == "avant"


def test_a_stopped_reading_is_incomplete_and_not_kept() -> None:
    doc = "<p>un</p>" + "<i>x</i>" * 20_000 + "<p>deux</p>"
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # the second time it is asked

    stopped = view(doc, stop=stop)
    assert not stopped.complete
    assert stopped.events is None
    assert stopped.text.startswith("un")
    assert "deux" not in stopped.text
    whole = view(doc)  # not taken from the cache
    assert whole.complete
    assert whole.text.endswith("deux")
    assert view(doc) is whole


_COMMENT_PIECES = st.lists(
    st.sampled_from(
        [
            "<!--",
            "-->",
            "--!>",
            "<!-->",
            "<!--->",
            "<!---->",
            "<!-",
            "<!",
            "<?",
            "</1",
            "</ ",
            "</>",
            "</",
            "<![x]>",
            "<!x>",
            ">",
            "-",
            "!",
            "[if mso]>",
            "<![CDATA[",
            "]]>",
            "<![endif]-->",
            "<svg>",
            "</svg>",
            "x",
            " ",
            "\n",
            "<p>",
            "<br>",
            "&amp;",
            "<a href=https://e.fr/>",
            "https://t.fr/",
        ]
    ),
    max_size=20,
).map("".join)


@_SETTINGS
@given(_COMMENT_PIECES)
def test_view_equals_the_token_definitions_on_comment_runs(doc: str) -> None:
    """Comments of every kind, one after the other or cut by the end: the view reads runs
    of them in one step, the state machine one token at a time."""
    _same(doc)


class _Counting:
    """``_STEP`` as the reader uses it, counting the matches it hands out."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.matches = 0

    def finditer(self, doc: str, pos: int) -> Iterator[re.Match[str]]:
        for found in self.pattern.finditer(doc, pos):
            self.matches += 1
            yield found


@pytest.mark.parametrize(
    "unit", ["<![x]>", "</1>", "<!x>", "<?x>", "<!-- c -->", "<!---->", "<!-->", "<![endif]>"]
)
def test_a_comment_flood_is_one_step_whatever_its_length(
    unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of comments (the worker-stall shape) costs the reader a fixed number of
    steps, not one per comment as the state machine takes, and never enters the state
    machine: its cost is one compiled match, linear in its length."""
    counting = _Counting(html_view._STEP)
    monkeypatch.setattr(html_view, "_STEP", counting)
    entered: list[int] = []
    markup = _Tokenizer._markup
    monkeypatch.setattr(
        _Tokenizer, "_markup", lambda self, lt: entered.append(lt) or markup(self, lt)
    )
    steps = []
    for count in (1_000, 4_000):
        doc = "<p>avant</p>" + unit * count + "<svg>" + unit * count + "</svg><p>après</p>"
        counting.matches = 0
        read = html_view._read(doc, keep_events=True)
        steps.append(counting.matches)
        assert entered == []
        assert read.text == reference_visible_text(doc) == "avant\naprès"
        assert sum(1 for _ in reference_tokenize(doc)) > 2 * count  # a token per comment
        entered.clear()
    assert steps[0] == steps[1] <= 8, steps
