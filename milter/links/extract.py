"""Extract links from text/plain and text/html parts, bounded in time and memory."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from milter.links._anchors import DOT_ANCHOR_RE, has_url_anchor, token_chars
from milter.links._html import scan_html
from milter.model.budget import checkpoint
from milter.text.psl import HostParts, registrable_domain, split_host
from milter.text.url import LinkFlag, ParsedUrl, UrlFields, parse_url, read_url

__all__ = ["Link", "LinkFlag", "LinkSet", "LinkSource", "extract_links", "find_text_urls"]


class LinkSource:
    """Where a link was found (stable strings)."""

    TEXT = "text"  # text/plain part
    HTML_TEXT = "html-text"  # a bare URL in the visible text of an HTML part
    HTML_HREF = "html-href"  # <a href>, <area href>
    HTML_SRC = "html-src"  # img/iframe/script/... src, <link href>, background=
    HTML_FORM = "html-form"  # <form action>, formaction=
    HTML_BASE = "html-base"  # <base href>
    HTML_REFRESH = "html-meta-refresh"  # <meta http-equiv=refresh content="0;url=...">


class Link(NamedTuple):
    """One link as found in the message.

    ``url`` is as written (HTML entities decoded); ``target`` is the absolute URL used
    for analysis (base-resolved, ``http://`` added to ``www.`` forms, hidden chars removed).
    ``host`` is lower-case Unicode, ``host_ascii`` its punycode form; both are "" when the
    URL has no host (``javascript:``, ``data:``, relative without base). ``authority`` is
    the span of the authority in ``target`` (as :attr:`ParsedUrl.authority`).
    """

    url: str
    source: str
    target: str
    scheme: str = ""
    host: str = ""
    host_ascii: str = ""
    anchor: str = ""
    anchor_host: str = ""
    userinfo: str = ""
    flags: frozenset[LinkFlag] = frozenset()
    authority: tuple[int, int] = (0, 0)

    @property
    def parsed(self) -> ParsedUrl:
        """:func:`parse_url`'s reading of ``target`` (made when the link was found)."""
        return ParsedUrl(
            self.target,
            self.scheme,
            self.host,
            self.host_ascii,
            self.userinfo,
            self.flags,
            self.authority,
        )

    @property
    def registrable(self) -> str:
        """Registrable domain of ``host_ascii`` ("" for IP hosts and host-less URLs)."""
        if not self.host_ascii or LinkFlag.IP_HOST in self.flags:
            return ""
        return registrable_domain(self.host_ascii)


# Link(...) with every field, positionally: half the cost of the generated __new__.
_new_link = functools.partial(tuple.__new__, Link)


@dataclass(frozen=True, slots=True)
class LinkSet:
    """Deduplicated links of one message; ``truncated`` when ``max_links`` was reached."""

    links: tuple[Link, ...] = ()
    truncated: bool = False

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)

    def hosts(self) -> frozenset[str]:
        """Distinct non-empty hosts (Unicode form)."""
        return frozenset(link.host for link in self.links if link.host)


class _Full(Exception):
    """Raised internally to stop scanning once ``max_links`` links are kept."""


_MAX_TOKEN = 8192
_LOOK_BACK = 32
_CACHED_HOST_CHARS = 255  # longer written hosts are split every time (bounded memory)
# At most max_links * _WORK_FACTOR written URLs are parsed (duplicates included).
_WORK_FACTOR = 25
# Tokens: runs of characters that may appear in a URL written in text. Only tokens with
# "://" or a dot followed by another token character can hold one (a scheme, "www.x" or
# a dotted host): the scan looks for those anchors (in C) and reads just the tokens
# around them, so ordinary words never reach Python. Each token is read once forward
# and once backward (from a reversed copy of what comes before it, _LOOK_BACK characters
# or, for a longer token, the whole text once): linear.
# (The delimiters and the dot anchor: milter/links/_anchors.py.)
_TOKEN_RUN_RE = re.compile(rf"[{token_chars()}]*")  # [^{TOKEN_DELIMS}]*
_START_RE = re.compile(r"(?i)(?:(?:https?|ftp|hxxps?)://|\bwww\d{0,3}\.[^.])")
_BARE_RE = re.compile(r"(?:[\w-]{1,63}\.){1,12}[^\W\d_]{2,63}\.?(?:[:/?#].*)?")
_LEADING = "([{<«\"'*_|"
_TRAILING = ".,;:!?)]}>'\"»…*_|"
# Suffixes that are also common file extensions: "setup.py" in text is not a link.
_FILE_LIKE = frozenset({"py", "md", "sh", "zip", "mov", "pl", "rs", "so", "ps", "cc", "in"})


def _trim(url: str) -> str:
    url = url.lstrip(_LEADING)
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


_HEAD_END_RE = re.compile(r"[:/?#]")


@functools.lru_cache(maxsize=4096)
def _host_parts(head: str) -> HostParts:
    """:func:`split_host`, cached: the same written hosts come back link after link."""
    return split_host(head)


def _bare_domain_ok(candidate: str) -> bool:
    """A scheme-less ``x.fr/...`` token counts when its suffix is on the PSL."""
    head = _HEAD_END_RE.split(candidate, maxsplit=1)[0].rstrip(".").lower()
    if "@" in candidate.split("/", 1)[0] or head[-1:].isdigit():
        return False
    parts = _host_parts(head) if len(head) <= _CACHED_HOST_CHARS else split_host(head)
    if not parts.domain or not parts.suffix:
        return False
    return parts.suffix not in _FILE_LIKE or len(head) < len(candidate.rstrip("."))


def _candidate_tokens(text: str) -> Iterator[str]:
    """The tokens of ``text`` (at most ``_MAX_TOKEN`` long) holding an anchor, in order."""
    size = len(text)
    found = DOT_ANCHOR_RE.search(text)
    dot = size if found is None else found.start()
    scheme = text.find("://")
    scheme = size if scheme < 0 else scheme
    if dot == scheme:  # both == size: no anchor
        return
    reverse, run = "", _TOKEN_RUN_RE.match
    while (at := dot if dot < scheme else scheme) < size:
        # The token's start: read backward from a reversed copy of the _LOOK_BACK
        # characters before the anchor (most tokens start within a few: "https", a host's
        # first label), of the whole text when the token runs further (made once).
        low = at - _LOOK_BACK if at > _LOOK_BACK else 0
        back = run(text[low:at][::-1])
        forward = run(text, at)
        assert back is not None  # the pattern matches the empty string
        assert forward is not None
        start, end = at - back.end(), forward.end()
        if start == low and low:
            if not reverse:
                reverse = text[::-1]
            back = run(reverse, size - at)
            assert back is not None
            start = at - (back.end() - (size - at))
        if end - start <= _MAX_TOKEN:
            yield text[start:end]
        if dot < end:  # the next anchor of each kind at or after the token's end
            found = DOT_ANCHOR_RE.search(text, end)
            dot = size if found is None else found.start()
        if scheme < end:
            scheme = text.find("://", end)
            scheme = size if scheme < 0 else scheme


def find_text_urls(text: str) -> Iterator[tuple[str, bool]]:
    """Yield ``(url, has_scheme)`` for URLs written in plain text, trailing punctuation trimmed."""
    for token in _candidate_tokens(text):
        found = _token_url(token)
        if found is not None:
            yield found


def _token_url(token: str) -> tuple[str, bool] | None:
    """The URL written in one candidate token, as ``(url, has_scheme)``, or None."""
    # _START_RE needs "://" or "www" (only w and W match w case-insensitively); its
    # search is tried at every character, these two look-ups are not.
    if token.startswith(("https://", "http://")):  # _START_RE's match at 0 (most tokens)
        url = _trim(token)
        return (url, "://" in url[:12]) if len(url) > 4 else None
    start = _START_RE.search(token) if "://" in token or "www" in token.lower() else None
    if start is not None:
        url = _trim(token[start.start() :])
        return (url, "://" in url[:12]) if len(url) > 4 else None
    candidate = _trim(token)
    if _BARE_RE.fullmatch(candidate) and _bare_domain_ok(candidate):
        return candidate, False
    return None


class _Sink:
    """Ordered, deduplicated, bounded link store."""

    def __init__(self, max_links: int) -> None:
        self.max_links = max_links
        self.kept_keys = max_links * 4  # bound of ``seen`` and of ``readings``
        self.links: dict[str, Link] = {}
        self.seen: set[tuple[str, str, str]] = set()
        # read_url's reading (parse_url's fields) of each written URL and base, by the URL
        # alone when there is no base (most): a URL written in both the text/plain and the
        # HTML part (with an anchor text there) is read once.
        self.readings: dict[str | tuple[str, str], UrlFields] = {}
        self.budget = max_links * _WORK_FACTOR
        self.truncated = False

    def take(
        self, url: str, source: str, base: str = "", anchor: str = "", assume_http: bool = False
    ) -> None:
        """Record the link written ``url``, found in ``source`` with ``anchor`` text, read
        against ``base`` (:func:`read_url`, kept in ``readings``; a scheme-less text URL
        with ``assume_http``, not kept). Nothing when this written URL with this base and
        anchor was already taken. At most ``max_links * _WORK_FACTOR`` URLs are read
        (duplicates included).

        One call a link, with what was ``known``/``add``/``_read`` inline: nearly every
        link of a message comes here once or twice (text part, then HTML)."""
        key = (url, base, anchor)
        seen = self.seen
        if key in seen:
            return
        self.budget = budget = self.budget - 1
        if not budget & 15:  # every 16 URLs: a deadline check costs a clock read
            checkpoint("link extraction")
        if budget < 0:
            self.truncated = True
            raise _Full
        if len(seen) < self.kept_keys:
            seen.add(key)
        if assume_http:
            parsed = read_url(url, "", True)
        else:
            readings = self.readings
            reading = readings.get(written := (url, base) if base else url)
            if reading is None:
                reading = read_url(url, base)
                if len(readings) < self.kept_keys:
                    readings[written] = reading
            parsed = reading
        target, scheme, host, host_ascii, userinfo, flags, authority = parsed
        if not target:
            return  # only invisible characters
        links = self.links
        previous = links.get(target)
        if previous is None:
            if len(links) >= self.max_links:
                self.truncated = True
                raise _Full
        elif not anchor or previous.anchor_host:
            return  # kept as first found, or with the first anchor naming a host
        # (an anchor without "." or ":" names no host: "Lire la suite", see _anchor_host)
        anchor_host = _anchor_host(anchor) if "." in anchor or ":" in anchor else ""
        if anchor_host:
            if host_ascii and _mismatch(anchor_host, host_ascii):
                flags = flags | {LinkFlag.ANCHOR_MISMATCH}
        elif previous is not None:
            return
        links[target] = _new_link(
            (
                url,
                source,
                target,
                scheme,
                host,
                host_ascii,
                anchor,
                anchor_host,
                userinfo,
                flags,
                authority,
            )
        )

    def add_text(self, text: str, source: str) -> None:
        if not has_url_anchor(text):
            return  # no URL, e.g. sentences ("Bonjour. A bientot."): a dot, no anchor
        checkpoint("text URL scan")
        take = self.take
        for token in _candidate_tokens(text):  # find_text_urls, inline
            found = _token_url(token)
            if found is not None:
                take(found[0], source, "", "", not found[1])


# An anchor text that is one written host and maybe a path, such as
# "lettre-culture.fr/agenda-ete" or "mairie.fr/impôt-2026" (the commonest anchors with a
# dot): one token (no delimiter), no scheme (no ":" in the path, so no "://" in it), no
# "@" before the path, the host already in _BARE_RE's form. Its URL is the anchor (what
# _trim may take off the end of a path leaves the host and the "/"), and what is read of
# it depends only on the host and whether a path follows (:func:`_written_host`, cached
# by host). Anchors with "www" take the general path (_START_RE reads them otherwise).
_HOST_ANCHOR_RE = re.compile(
    rf"((?:[a-zA-Z0-9-]{{1,63}}\.){{1,12}}[a-zA-Z]{{2,63}})(/[{token_chars(':')}]*)?"
)


def _anchor_host(anchor: str) -> str:
    """Host named by an anchor text such as "https://www.ameli.fr" or "ameli.fr"."""
    if "." not in anchor and ":" not in anchor:
        return ""  # no URL anchor (see add_text): "Lire la suite", "Cliquez ici"
    plain = _HOST_ANCHOR_RE.fullmatch(anchor) if len(anchor) <= _MAX_TOKEN else None
    if plain is not None and "www" not in anchor.lower():
        head, path = plain.group(1, 2)
        if len(head) <= _CACHED_HOST_CHARS:
            return _written_host(head, path is not None)
    return _reference_anchor_host(anchor)


def _reference_anchor_host(anchor: str) -> str:
    """:func:`_anchor_host` by definition: the host of the first URL read in the text."""
    for url, has_scheme in find_text_urls(anchor):
        parsed = parse_url(url, assume_http=not has_scheme)
        if parsed.host_ascii:
            return parsed.host_ascii
    return ""


@functools.lru_cache(maxsize=4096)
def _written_host(head: str, has_path: bool) -> str:
    """The host read from a text URL that is ``head`` (a plain host, see _HOST_ANCHOR_RE),
    followed by a path when ``has_path``; "" when it is not read as a URL. The path's
    characters change neither answer, so one "/" stands for any."""
    candidate = head + "/" if has_path else head
    return parse_url(candidate, assume_http=True).host_ascii if _bare_domain_ok(candidate) else ""


def _registrable(host: str) -> str:
    return (_host_parts(host) if len(host) <= _CACHED_HOST_CHARS else split_host(host)).registrable


def _mismatch(anchor_host: str, href_host: str) -> bool:
    """The two hosts' registrable domains differ; cached per pair of hosts (an anchor
    text naming the sender's site and its links' host come back link after link)."""
    if len(anchor_host) <= _CACHED_HOST_CHARS and len(href_host) <= _CACHED_HOST_CHARS:
        return _mismatch_of(anchor_host, href_host)
    return _registrable(anchor_host) != _registrable(href_host)


@functools.lru_cache(maxsize=4096)
def _mismatch_of(anchor_host: str, href_host: str) -> bool:
    return _registrable(anchor_host) != _registrable(href_host)


def extract_links(
    text_parts: Sequence[str], html_parts: Sequence[str], max_links: int = 2000
) -> LinkSet:
    """Extract and deduplicate (by absolute URL) the links of text and HTML parts.

    Stops after ``max_links`` distinct links and sets ``LinkSet.truncated``. Never fetches
    anything.
    """
    sink = _Sink(max_links)
    try:
        for text in text_parts:
            sink.add_text(text, LinkSource.TEXT)
        for html in html_parts:
            scan_html(html, sink)
    except _Full:
        pass
    return LinkSet(tuple(sink.links.values()), sink.truncated)
