"""The HTML link scan (:func:`milter.links._html.collect_links`, its common events inline)
gives its sink the same links and text URLs, in the same order, as the plain definition
below: one method per event kind, every link through ``emit``, every visible text scanned
(the scan leaves out texts without ``.`` or ``:``, which hold no URL). Checked on
generated event streams (every tag the scan acts on, anchors open at a tag or at the end,
hidden text, ``<base>``, images with and without ``src``), on generated markup and on
the benchmark corpus."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from benchmarks.harness.corpus import generate
from milter.links._html import collect_links
from milter.links.extract import find_text_urls
from milter.mime.parse import parse_message
from milter.text import html_view
from milter.text.html_view import Element, LinkEvent
from milter.text.url import parse_url
from tests.text.html_markup import MARKUP

_SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SRC_TAGS = frozenset(
    {"img", "iframe", "frame", "script", "embed", "source", "audio", "video", "track", "input"}
)
_HIDDEN_TEXT_TAGS = frozenset({"head", "template"})
_REFRESH_RE = re.compile(r"(?i)^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]+)")
_MAX_ANCHOR = 300
_A_END = Element("a", True, {})


class _Recorder:
    """A sink that writes down every link taken and every URL the text scan finds, in
    order (what the extractor's sink does with them: a text scanned for URLs gives
    the links of :func:`find_text_urls`; a text with none gives nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def take(self, url: str, source: str, base: str, anchor: str = "") -> None:
        self.calls.append(("take", url, source, base, anchor))

    def add_text(self, text: str, source: str) -> None:
        for url, has_scheme in find_text_urls(text):
            self.calls.append(("text", url, str(has_scheme), source))


class _Plain:
    """The scan by definition: one method per event, a link always through emit."""

    def __init__(self, sink: _Recorder, batch_text: bool) -> None:
        self.sink, self.batch_text = sink, batch_text
        self.base = ""
        self.hidden_depth = 0
        self.open_href: str | None = None
        self.anchor_parts: list[str] = []
        self.anchor_len = 0
        self.pending: list[str] = []

    def flush_text(self) -> None:
        if self.pending:
            text = " ".join(self.pending)
            self.pending = []
            self.sink.add_text(text, "html-text")

    def emit(self, url: str, source: str, anchor: str = "") -> None:
        self.flush_text()
        url = url.strip()
        if url:
            self.sink.take(url, source, self.base, anchor)

    def close_anchor(self) -> None:
        if self.open_href is not None:
            anchor = " ".join("".join(self.anchor_parts).split())[:_MAX_ANCHOR]
            href, self.open_href = self.open_href, None
            self.anchor_parts, self.anchor_len = [], 0
            self.emit(href, "html-href", anchor)

    def text(self, data: str) -> None:
        if self.open_href is not None:
            if self.anchor_len < _MAX_ANCHOR * 4:
                self.anchor_parts.append(data)
                self.anchor_len += len(data)
        elif not self.hidden_depth:
            self.pending.append(data)
            if not self.batch_text:
                self.flush_text()

    def start_tag(self, name: str, attrs: dict[str, str]) -> None:
        if name in _HIDDEN_TEXT_TAGS:
            self.hidden_depth += 1
        elif name == "body":
            self.hidden_depth = 0
        href = attrs.get("href")
        if href is None:
            href = attrs.get("xlink:href")
        if attrs.get("background") is not None:
            self.emit(attrs["background"], "html-src")
        if name == "a":
            self.close_anchor()
            self.open_href = href
            return
        if name == "base" and href is not None:
            if not self.base and href.strip():
                self.emit(href, "html-base")
                self.base = parse_url(href.strip()).target
        elif name == "area" and href is not None:
            self.emit(href, "html-href", attrs.get("alt") or "")
        elif name == "link" and href is not None:
            self.emit(href, "html-src")
        elif name == "form" and attrs.get("action") is not None:
            self.emit(attrs["action"], "html-form")
        elif name in _SRC_TAGS and attrs.get("src") is not None:
            self.emit(attrs["src"], "html-src")
        elif name == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = _REFRESH_RE.match(attrs.get("content") or "")
            if match and not match.group(1).strip().isdigit():
                self.emit(match.group(1), "html-meta-refresh")
        elif href is not None:
            self.emit(href, "html-href")
        if attrs.get("formaction") is not None:
            self.emit(attrs["formaction"], "html-form")
        if name == "img" and self.open_href is not None and attrs.get("alt"):
            self.text(" " + attrs["alt"] + " ")

    def end_tag(self, name: str) -> None:
        if name == "a":
            self.close_anchor()
        elif name in _HIDDEN_TEXT_TAGS and self.hidden_depth:
            self.hidden_depth -= 1


def _plain_calls(events: Iterable[LinkEvent], batch_text: bool = True) -> list[tuple[str, ...]]:
    sink = _Recorder()
    scan = _Plain(sink, batch_text)
    for event in events:
        if isinstance(event, str):
            scan.text(event)
        elif event.end_tag:
            scan.end_tag(event.name)
        else:
            scan.start_tag(event.name, event.attrs)
    scan.close_anchor()
    scan.flush_text()
    return sink.calls


def _calls(events: Iterable[LinkEvent], batch_text: bool = True) -> list[tuple[str, ...]]:
    sink = _Recorder()
    collect_links(events, sink, batch_text=batch_text)
    return sink.calls


_NAMES = st.sampled_from(
    [
        "a",
        "img",
        "base",
        "area",
        "link",
        "form",
        "iframe",
        "input",
        "meta",
        "head",
        "template",
        "body",
        "td",
        "v:roundrect",
        "button",
    ]
)
_ATTR_NAMES = st.sampled_from(
    [
        "href",
        "xlink:href",
        "src",
        "alt",
        "background",
        "action",
        "formaction",
        "http-equiv",
        "content",
    ]
)
_VALUES = st.sampled_from(
    [
        "",
        " ",
        "https://x.fr/a",
        " https://y.fr/b?c=d ",
        "/rel",
        "logo",
        "refresh",
        "Refresh",
        "0; url=https://m.fr/",
        "5",
        "x.fr",
    ]
)
_TEXTS = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "Lire la suite",
        "x.fr/a",
        "voir https://t.fr/p.",
        "a.  b",
        " · ",
        "x",
        ".fr",
        "http:",
        "//y.fr",
    ]
)


@st.composite
def _events(draw: st.DrawFn) -> list[LinkEvent]:
    out: list[LinkEvent] = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            out.append(draw(_TEXTS))
        elif kind == 1:
            out.append(Element(draw(_NAMES), True, {}))
        else:
            attrs = draw(st.dictionaries(_ATTR_NAMES, _VALUES, max_size=4))
            out.append(Element(draw(_NAMES), False, attrs))
    return out


@_SETTINGS
@given(_events(), st.booleans())
@example(["voir t.fr/p", Element("a", False, {"href": "https://x.fr/"}), "t", _A_END], True)
@example(["http://intranet/a", Element("img", False, {"src": "https://i.fr/"})], True)
def test_the_scan_makes_the_calls_of_the_plain_definition(
    events: list[LinkEvent], batch_text: bool
) -> None:
    assert _calls(events, batch_text) == _plain_calls(events, batch_text), events


@_SETTINGS
@given(MARKUP)
def test_the_scan_of_markup_makes_the_calls_of_the_plain_definition(doc: str) -> None:
    events = html_view._read(doc, keep_events=True).events
    assert events is not None
    assert _calls(events) == _plain_calls(events), doc


def test_the_scan_of_the_corpus_makes_the_calls_of_the_plain_definition() -> None:
    seen = 0
    for bench in generate(60):
        for html in parse_message(bench.raw).htmls:
            events = html_view._read(html, keep_events=True).events
            assert events is not None
            calls = _calls(events)
            assert calls == _plain_calls(events)
            seen += len(calls)
    assert seen > 1000


def test_a_long_anchor_and_a_long_anchor_text_are_cut_the_same() -> None:
    events: list[LinkEvent] = [Element("a", False, {"href": "https://x.fr/"})]
    events += ["mot " * 200] * 3 + [Element("img", False, {"alt": "logo"}), "fin"]
    events += [Element("a", False, {"href": "https://y.fr/"}), "y.fr"]  # closed by the end
    assert _calls(events) == _plain_calls(events)
    assert [call[0] for call in _calls(events)] == ["take", "take"]
