"""HTML link collection over the toolkit's tokenizer (:mod:`milter.text.html`).

Sees the links a browser would follow: ``href`` on ``<a>``/``<area>`` and on any other
element (Outlook VML buttons), SVG ``xlink:href``, ``src``/``background``/``action``/
``formaction``, ``<base href>``, ``<meta http-equiv=refresh>``; and the links inside
Outlook conditional comments, which the tokenizer opens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from milter.model.budget import checkpoint, spent
from milter.text.html_view import Element, LinkEvent, events_of
from milter.text.url import ParsedUrl, parse_url

_SRC_TAGS = frozenset(
    {"img", "iframe", "frame", "script", "embed", "source", "audio", "video", "track", "input"}
)
_HIDDEN_TEXT_TAGS = frozenset({"head", "template"})
_REFRESH_RE = re.compile(r"(?i)^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]+)")
_MAX_ANCHOR = 300
_HREF_NAMES = ("href", "xlink:href")


class LinkSink(Protocol):
    """Where the HTML scanner puts what it finds."""

    def add(self, url: str, source: str, parsed: ParsedUrl, anchor: str = "") -> None:
        """Record one link."""

    def add_text(self, text: str, source: str) -> None:
        """Scan visible text for written URLs."""

    def parse(self, url: str, base: str, anchor: str = "") -> ParsedUrl | None:
        """:func:`~milter.text.url.parse_url`'s reading of ``url`` against ``base`` (the
        sink may keep readings: the same URL often comes back in one message), or None
        when this URL with this anchor was already recorded (then it is not read)."""


def _href(attrs: dict[str, str]) -> str | None:
    for name in _HREF_NAMES:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


class _Collector:
    def __init__(self, sink: LinkSink, batch_text: bool) -> None:
        self.sink = sink
        self.batch_text = batch_text
        self.base = ""
        self.hidden_depth = 0
        self.open_href: str | None = None
        self.anchor_parts: list[str] = []
        self.anchor_len = 0
        self.pending: list[str] = []  # visible text not yet scanned for written URLs

    def flush_text(self) -> None:
        """Scan the visible text read since the last link for written URLs, in one call:
        a space between texts is a URL delimiter, so the URLs found, and their order
        among the other links, are those of one call per text."""
        if self.pending:
            text = " ".join(self.pending)
            self.pending = []
            self.sink.add_text(text, "html-text")

    def _emit(self, url: str, source: str, anchor: str = "") -> None:
        self.flush_text()
        url = url.strip()
        if url:
            parsed = self.sink.parse(url, self.base, anchor)
            if parsed is not None:
                self.sink.add(url, source, parsed, anchor)

    def close_anchor(self) -> None:
        if self.open_href is not None:
            anchor = " ".join("".join(self.anchor_parts).split())[:_MAX_ANCHOR]
            href, self.open_href = self.open_href, None
            self.anchor_parts, self.anchor_len = [], 0
            self._emit(href, "html-href", anchor)

    def start_tag(self, tag: Element) -> None:
        name = tag.name
        if name in _HIDDEN_TEXT_TAGS:
            self.hidden_depth += 1
        elif name == "body":
            self.hidden_depth = 0
        attrs = tag.attrs
        background = attrs.get("background")
        if background is not None:
            self._emit(background, "html-src")
        if name == "a":
            self.close_anchor()
            self.open_href = _href(attrs)
        elif attrs:  # every other case reads an attribute
            self._other_tag(name, attrs)

    def _other_tag(self, name: str, attrs: dict[str, str]) -> None:
        href = _href(attrs)
        if name == "base" and href is not None:
            if not self.base and href.strip():
                self._emit(href, "html-base")
                self.base = parse_url(href.strip()).target
        elif name == "area" and href is not None:
            self._emit(href, "html-href", attrs.get("alt") or "")
        elif name == "link" and href is not None:
            self._emit(href, "html-src")
        elif name == "form" and attrs.get("action") is not None:
            self._emit(attrs.get("action") or "", "html-form")
        elif name in _SRC_TAGS and attrs.get("src") is not None:
            self._emit(attrs.get("src") or "", "html-src")
        elif name == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = _REFRESH_RE.match(attrs.get("content") or "")
            if match and not match.group(1).strip().isdigit():
                self._emit(match.group(1), "html-meta-refresh")
        elif href is not None:  # e.g. Outlook VML buttons: <v:roundrect href="...">
            self._emit(href, "html-href")
        formaction = attrs.get("formaction")
        if formaction is not None:
            self._emit(formaction, "html-form")
        alt = attrs.get("alt")
        if name == "img" and self.open_href is not None and alt:
            self.text(" " + alt + " ")

    def end_tag(self, tag: Element) -> None:
        if tag.name == "a":
            self.close_anchor()
        elif tag.name in _HIDDEN_TEXT_TAGS and self.hidden_depth:
            self.hidden_depth -= 1

    def text(self, data: str) -> None:
        if self.open_href is not None:
            if self.anchor_len < _MAX_ANCHOR * 4:
                self.anchor_parts.append(data)
                self.anchor_len += len(data)
        elif not self.hidden_depth:
            self.pending.append(data)
            if not self.batch_text:
                self.flush_text()


def scan_html(html: str, sink: LinkSink) -> None:
    """Collect the links of one HTML part into ``sink``."""
    events = events_of(html, stop=spent)  # shared with the visible text (cached)
    if events is None:  # the work budget is spent
        checkpoint("html links")  # raises
        return
    collect_links(events, sink)


def collect_links(events: Iterable[LinkEvent], sink: LinkSink, *, batch_text: bool = True) -> None:
    """Collect the links of an HTML part's link events into ``sink``. Visible text is
    scanned for written URLs a run at a time (``batch_text=False``: one text at a time,
    the same links in the same order; what the batching is tested against)."""
    collector = _Collector(sink, batch_text)
    for count, event in enumerate(events):
        if not count % 256:
            checkpoint("html links")
        if isinstance(event, str):
            collector.text(event)
        elif event.end_tag:
            collector.end_tag(event)
        else:
            collector.start_tag(event)
    collector.close_anchor()
    collector.flush_text()
