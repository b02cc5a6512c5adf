"""HTML link collection over the toolkit's tokenizer (:mod:`milter.text.html`).

Sees the links a browser would follow: ``href`` on ``<a>``/``<area>`` and on any other
element (Outlook VML buttons), SVG ``xlink:href``, ``src``/``background``/``action``/
``formaction``, ``<base href>``, ``<meta http-equiv=refresh>``; and the links inside
Outlook conditional comments, which the tokenizer opens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice
from typing import Protocol

from milter.links._anchors import DOT_ANCHOR_RE
from milter.model.budget import checkpoint, spent
from milter.text.html_view import LinkEvent, events_of
from milter.text.url import parse_url

_SRC_TAGS = frozenset(
    {"img", "iframe", "frame", "script", "embed", "source", "audio", "video", "track", "input"}
)
_HIDDEN_TEXT_TAGS = frozenset({"head", "template"})
_REFRESH_RE = re.compile(r"(?i)^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]+)")
_MAX_ANCHOR = 300


class LinkSink(Protocol):
    """Where the HTML scanner puts what it finds."""

    def take(self, url: str, source: str, base: str, anchor: str = "") -> None:
        """Record one link written ``url`` (stripped, not empty), read against ``base``
        (:func:`~milter.text.url.parse_url`); nothing when this URL with this base and
        anchor was already taken."""

    def add_text(self, text: str, source: str) -> None:
        """Scan visible text for written URLs. The scan leaves out the texts without a
        URL anchor (:func:`~milter.links._anchors.has_url_anchor`: no URL can be written
        without one)."""


def _href(attrs: dict[str, str]) -> str | None:
    href = attrs.get("href")
    return attrs.get("xlink:href") if href is None else href


class _Collector:
    """The scan's state between events (one HTML part). What nearly every event does
    (text in or out of an anchor, ``<a>``, ``</a>``, hidden-text tags) is inline in
    :func:`collect_links`, which keeps the open anchor's href, its text's length and the
    hidden-text depth in locals (``open_href`` and ``anchor_len`` are set here for
    :meth:`other_tag`); the rest is here. ``pending`` and ``anchor_parts`` are emptied
    in place (the scan holds them)."""

    __slots__ = ("anchor_len", "anchor_parts", "base", "open_href", "pending", "sink", "take")

    def __init__(self, sink: LinkSink) -> None:
        self.sink = sink
        self.take = sink.take
        self.base = ""
        self.open_href: str | None = None
        self.anchor_parts: list[str] = []
        self.anchor_len = 0
        self.pending: list[str] = []  # visible text not yet scanned for written URLs

    def flush_text(self) -> None:
        """Scan the visible text read since the last link for written URLs, in one call:
        a space between texts is a URL delimiter, so the URLs found, and their order
        among the other links, are those of one call per text. Only texts with a URL
        anchor are kept for it (most texts between links have none: " · ", line breaks,
        "Lire la suite", paragraphs of sentences), so that most links find nothing to
        scan before them."""
        pending = self.pending
        if pending:
            text = " ".join(pending)
            pending.clear()
            self.sink.add_text(text, "html-text")

    def emit(self, url: str, source: str, anchor: str = "") -> None:
        if self.pending:
            self.flush_text()
        url = url.strip()
        if url:
            self.take(url, source, self.base, anchor)

    def close_anchor(self, href: str) -> None:
        """The open ``<a>``'s link (``href``), with its text: :meth:`emit` inline."""
        parts = self.anchor_parts
        anchor = " ".join("".join(parts).split())[:_MAX_ANCHOR]
        parts.clear()
        if self.pending:
            self.flush_text()
        href = href.strip()
        if href:
            self.take(href, "html-href", self.base, anchor)

    def named_tag(self, name: str, attrs: dict[str, str], href: str | None) -> None:
        """The link of a start tag other than ``<a>`` and ``<img>``."""
        if name == "base" and href is not None:
            if not self.base and href.strip():
                self.emit(href, "html-base")
                self.base = parse_url(href.strip()).target
        elif name == "area" and href is not None:
            self.emit(href, "html-href", attrs.get("alt") or "")
        elif name == "link" and href is not None:
            self.emit(href, "html-src")
        elif name == "form" and attrs.get("action") is not None:
            self.emit(attrs.get("action") or "", "html-form")
        elif name in _SRC_TAGS and attrs.get("src") is not None:
            self.emit(attrs.get("src") or "", "html-src")
        elif name == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = _REFRESH_RE.match(attrs.get("content") or "")
            if match and not match.group(1).strip().isdigit():
                self.emit(match.group(1), "html-meta-refresh")
        elif href is not None:  # e.g. Outlook VML buttons: <v:roundrect href="...">
            self.emit(href, "html-href")

    def other_tag(self, name: str, attrs: dict[str, str]) -> None:
        """A start tag other than ``<a>`` with attributes (``background`` already read)."""
        if name == "img":  # the commonest: none of the named cases below but its own
            src = attrs.get("src")
            if src is not None:
                self.emit(src, "html-src")
            elif (href := _href(attrs)) is not None:
                self.emit(href, "html-href")
        else:
            self.named_tag(name, attrs, _href(attrs))
        formaction = attrs.get("formaction")
        if formaction is not None:
            self.emit(formaction, "html-form")
        alt = attrs.get("alt")
        open_anchor = self.open_href is not None and self.anchor_len < _MAX_ANCHOR * 4
        if name == "img" and open_anchor and alt:  # a part of the anchor's text
            self.anchor_parts.append(" " + alt + " ")
            self.anchor_len += len(alt) + 2


def scan_html(html: str, sink: LinkSink) -> None:
    """Collect the links of one HTML part into ``sink``."""
    events = events_of(html, stop=spent)  # shared with the visible text (cached)
    if events is None:  # the work budget is spent
        checkpoint("html links")  # raises
        return
    collect_links(events, sink)
    checkpoint("html links")  # raises if a large part's stream was cut by the budget


def collect_links(events: Iterable[LinkEvent], sink: LinkSink, *, batch_text: bool = True) -> None:
    """Collect the links of an HTML part's link events into ``sink``. Visible text is
    scanned for written URLs a run at a time (``batch_text=False``: one text at a time,
    the same links in the same order; what the batching is tested against)."""
    state = _Collector(sink)
    dot_anchor = DOT_ANCHOR_RE.search
    close_anchor, other_tag = state.close_anchor, state.other_tag
    pending, anchor_parts = state.pending, state.anchor_parts
    open_href: str | None = None  # the open <a>'s href
    anchor_len = hidden = 0  # its text's length so far; depth of head/template
    stream = iter(events)
    # The deadline is checked as each 256th event is read (0, 256, ...), before the next
    # ones are: a stream read on demand (a large part) reads one event past a spent one.
    for first in stream:
        checkpoint("html links")
        chunk = [first]
        chunk += islice(stream, 255)
        for event in chunk:
            if isinstance(event, str):  # most events: text (in an anchor or between links)
                if open_href is None:
                    if not hidden and (  # has_url_anchor(event), inline
                        ("." in event and dot_anchor(event) is not None)
                        or (":" in event and "://" in event)
                    ):
                        pending.append(event)
                        if not batch_text:
                            state.flush_text()
                elif anchor_len < _MAX_ANCHOR * 4:
                    anchor_parts.append(event)
                    anchor_len += len(event)
                continue
            name, end_tag, attrs = event
            if end_tag:
                if name == "a":
                    if open_href is not None:
                        close_anchor(open_href)
                        open_href, anchor_len = None, 0
                elif name in _HIDDEN_TEXT_TAGS and hidden:
                    hidden -= 1
                continue
            if name in _HIDDEN_TEXT_TAGS:
                hidden += 1
            elif name == "body":
                hidden = 0
            background = attrs.get("background")
            if background is not None:
                state.emit(background, "html-src")
            if name == "a":
                if open_href is not None:
                    close_anchor(open_href)
                    anchor_len = 0
                href = attrs.get("href")
                open_href = attrs.get("xlink:href") if href is None else href
            elif attrs:  # every other case reads an attribute
                state.open_href, state.anchor_len = open_href, anchor_len
                other_tag(name, attrs)
                anchor_len = state.anchor_len
    if open_href is not None:
        close_anchor(open_href)
    state.flush_text()
