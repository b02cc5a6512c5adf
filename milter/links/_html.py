"""HTML link collection on top of the standard library's tolerant ``html.parser``."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Protocol

from milter.text.url import ParsedUrl, parse_url

_SRC_TAGS = frozenset(
    {"img", "iframe", "frame", "script", "embed", "source", "audio", "video", "track", "input"}
)
_HIDDEN_TEXT_TAGS = frozenset({"script", "style", "title", "head", "template"})
_REFRESH_RE = re.compile(r"(?i)^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]+)")
_MAX_ANCHOR = 300
_MAX_COMMENT_DEPTH = 2


class LinkSink(Protocol):
    """Where the HTML scanner puts what it finds."""

    def add(self, url: str, source: str, parsed: ParsedUrl, anchor: str = "") -> None:
        """Record one link."""

    def add_text(self, text: str, source: str) -> None:
        """Scan visible text for written URLs."""

    def known(self, url: str, base: str, anchor: str = "") -> bool:
        """True when this written URL was already recorded (cheap dedupe before parsing)."""


class _Collector(HTMLParser):
    def __init__(self, sink: LinkSink, comment_depth: int = 0) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = sink
        self.comment_depth = comment_depth
        self.base = ""
        self.hidden_depth = 0
        self.open_href: str | None = None
        self.anchor_parts: list[str] = []
        self.anchor_len = 0

    def _emit(self, url: str, source: str, anchor: str = "") -> None:
        url = url.strip()
        if url and not self.sink.known(url, self.base, anchor):
            self.sink.add(url, source, parse_url(url, self.base), anchor)

    def _close_anchor(self) -> None:
        if self.open_href is not None:
            anchor = " ".join("".join(self.anchor_parts).split())[:_MAX_ANCHOR]
            href, self.open_href = self.open_href, None
            self.anchor_parts, self.anchor_len = [], 0
            self._emit(href, "html-href", anchor)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values: dict[str, str] = {}
        for name, value in attrs:
            values.setdefault(name, value or "")
        if tag in _HIDDEN_TEXT_TAGS:
            self.hidden_depth += 1
        if "background" in values:
            self._emit(values["background"], "html-src")
        if tag == "a":
            self._close_anchor()
            if "href" in values:
                self.open_href = values["href"]
        else:
            self._other_tag(tag, values)

    def _other_tag(self, tag: str, values: dict[str, str]) -> None:
        if tag == "base" and "href" in values:
            href = values["href"].strip()
            if not self.base and href:
                self._emit(href, "html-base")
                self.base = parse_url(href).target
        elif tag == "area" and "href" in values:
            self._emit(values["href"], "html-href", values.get("alt", ""))
        elif tag == "link" and "href" in values:
            self._emit(values["href"], "html-src")
        elif tag == "form" and "action" in values:
            self._emit(values["action"], "html-form")
        elif tag in _SRC_TAGS and "src" in values:
            self._emit(values["src"], "html-src")
        elif tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            match = _REFRESH_RE.match(values.get("content", ""))
            if match and not match.group(1).strip().isdigit():
                self._emit(match.group(1), "html-meta-refresh")
        elif "href" in values:  # e.g. Outlook VML buttons: <v:roundrect href="...">
            self._emit(values["href"], "html-href")
        if "formaction" in values:
            self._emit(values["formaction"], "html-form")
        if tag == "img" and self.open_href is not None and values.get("alt"):
            self.handle_data(" " + values["alt"] + " ")

    def handle_comment(self, data: str) -> None:
        """Outlook conditional comments (``<!--[if mso]>…<![endif]-->``) hold real markup."""
        if data.lstrip().startswith("[if") and self.comment_depth < _MAX_COMMENT_DEPTH:
            start = data.find(">")
            nested = _Collector(self.sink, self.comment_depth + 1)
            nested.base = self.base
            nested.feed(data[start + 1 :] if start >= 0 else "")
            nested.close()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_anchor()
        elif tag in _HIDDEN_TEXT_TAGS and self.hidden_depth:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.open_href is not None:
            if self.anchor_len < _MAX_ANCHOR * 4:
                self.anchor_parts.append(data)
                self.anchor_len += len(data)
        elif not self.hidden_depth:
            self.sink.add_text(data, "html-text")

    def close(self) -> None:
        super().close()
        self._close_anchor()


def scan_html(html: str, sink: LinkSink) -> None:
    """Feed one HTML part to the collector; entities are decoded by the parser."""
    collector = _Collector(sink)
    collector.feed(html)
    collector.close()
