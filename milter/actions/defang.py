"""Neutralise suspicious links in plain text and HTML, leaving every other byte alone.

``defang`` keeps the real host readable but no longer clickable nor auto-linked
(``hxxps://ameli-remboursement[.]fr/…``). ``redirect`` (HTML links only) points the link
at the admin's warning page with a signed copy of the original, and keeps the defanged
original in a ``title`` so the real host still shows on hover. URLs written as text are
defanged in both modes: a warning page cannot help a URL the reader copies by hand.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from milter.actions.targets import LinkTargets
from milter.text.html import Selection, Tag, Text, tokenize
from milter.text.url import bracket_dots, defang_url, host_of

__all__ = ["LinkRewrite", "defang_links_html", "defang_links_text", "defang_url", "host_of"]

_URL = re.compile(r"""(?i)\b(?:https?|ftp)://[^\s<>"'`]+""")
_TRAILING = ".,;:!?)]}'\""
_MAX_NESTED = 4  # URLs nested in a URL, defanged in one call
NOTE_ATTR = "data-tocsin-defanged"  # used instead of title= when the tag has a title
HOST_ATTR = "data-tocsin-host"  # marks the visible label naming a rewritten link's host
_HOST_STYLE = "color:#b00020;font-weight:bold;"
_NOT_CLICKABLE = frozenset({"base", "link"})  # their href is not a link the reader follows
# The attributes the rewriter reads (those _link_attr can accept, and title); the tags
# with none of the link names get none read (the tokenizer skips their attribute lists)
# and are not even yielded (the rewriter changes a tag only through those attributes).
LINK_ATTRIBUTES = Selection(
    {"href", "xlink:href", "action", "formaction"}, also={"title"}, bare_tags=False
)


@dataclass(frozen=True, slots=True)
class LinkRewrite:
    """Which links to neutralise, and how: ``redirect`` maps an original URL to the
    warning-page URL (None = defang in place)."""

    targets: LinkTargets
    redirect: Callable[[str], str] | None = None


def _defang_text_urls(text: str, targets: LinkTargets, *, entities: bool) -> str:
    if "://" not in text:
        return text  # what _URL needs (an entity-written "&#58;//" is no URL to _URL either)

    def fix(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(_TRAILING)
        written = html.unescape(core) if entities else core
        if not targets.url_matches(written):
            return url
        return defang_url(core) + url[len(core) :]

    # A defanged URL may still hold a URL (``…/*http://evil.example``) that auto-linking
    # would find: repeat until stable, so one call does all a second call would.
    for _ in range(_MAX_NESTED):
        new = _URL.sub(fix, text)
        if new == text:
            break
        text = new
    return text


@lru_cache(maxsize=64)
def _bare_host_pattern(hosts: frozenset[str]) -> re.Pattern[str] | None:
    names = sorted((h for h in hosts if "." in h), key=len, reverse=True)
    if not names:
        return None
    alternatives = "|".join(re.escape(h) for h in names)
    return re.compile(r"(?<![\w.@/-])(?:" + alternatives + r")(?![\w-]|\.[\w-])", re.I)


@lru_cache(maxsize=64)
def _ascii(hosts: frozenset[str]) -> bool:
    return all(host.isascii() for host in hosts)


def _defang_bare_hosts(text: str, hosts: frozenset[str]) -> str:
    pattern = _bare_host_pattern(hosts)
    if pattern is None:
        return text
    if text.isascii() and _ascii(hosts):
        # The pattern (a lookbehind, then the alternation) is tried at every offset; in
        # ASCII, re.I and str.lower agree, so a text holding none of the hosts is left
        # as it is at once (non-ASCII text keeps the pattern's own case folding).
        folded = text.lower()
        if not any(host in folded for host in hosts):
            return text
    return pattern.sub(lambda m: bracket_dots(m.group(0)), text)


def defang_links_text(text: str, targets: LinkTargets, *, entities: bool = False) -> str:
    """Defang URLs and bare host names in plain text that ``targets`` names.

    ``entities``: the text is HTML character data (URLs are matched entity-decoded).
    """
    if not targets or "." not in text:
        return text
    return _defang_bare_hosts(_defang_text_urls(text, targets, entities=entities), targets.hosts)


def _link_attr(tag_name: str, attr: str) -> bool:
    if attr == "formaction":
        return True
    if tag_name == "form":
        return attr == "action"
    return attr in ("href", "xlink:href") and tag_name not in _NOT_CLICKABLE


class _Links:
    """What each link URL of one document becomes, worked out once per URL: a newsletter
    repeats its tracking links (the same ``href`` on the image, the title and the button)."""

    __slots__ = ("_hosts", "_matches", "_redirects", "_shown", "rewrite")

    def __init__(self, rewrite: LinkRewrite) -> None:
        self.rewrite = rewrite
        self._matches: dict[str, bool] = {}
        self._shown: dict[str, str] = {}
        self._redirects: dict[str, str] = {}
        self._hosts: dict[str, str] = {}

    def matches(self, url: str) -> bool:
        """``targets.url_matches(url)``."""
        found = self._matches.get(url)
        if found is None:
            found = self._matches[url] = self.rewrite.targets.url_matches(url)
        return found

    def shown(self, url: str) -> str:
        """The defanged URL, escaped for an attribute value."""
        shown = self._shown.get(url)
        if shown is None:
            shown = self._shown[url] = html.escape(defang_url(url), quote=True)
        return shown

    def redirect(self, redirect: Callable[[str], str], url: str) -> str:
        """The warning-page URL, escaped for an attribute value."""
        target = self._redirects.get(url)
        if target is None:
            target = self._redirects[url] = html.escape(redirect(url), quote=True)
        return target

    def host(self, url: str) -> str:
        """The host the link really leads to, defanged, for the visible label."""
        host = self._hosts.get(url)
        if host is None:
            host = bracket_dots(self.rewrite.targets.destination(url)) or defang_url(url)[:80]
            self._hosts[url] = host
        return host


def _rewrite_tag(document: str, tag: Tag, links: _Links) -> str | None:
    """The tag's new source text, or None when none of its links is a target."""
    note = ""  # title, or NOTE_ATTR when the tag has a title: chosen at the first target
    out: list[str] = []
    pos = tag.start
    shown_host = ""
    redirect = links.rewrite.redirect
    for attr in tag.attrs:
        if attr.value_start < 0 or not _link_attr(tag.name, attr.name):
            continue
        url = attr.value.strip()
        if not links.matches(url):
            continue
        if not note:
            note = NOTE_ATTR if any(a.name == "title" for a in tag.attrs) else "title"
        lead = "" if document[attr.start - 1] in " \t\r\n\f" else " "
        shown = links.shown(url)
        replacement = f'{lead}{note}="{shown}"'
        if redirect is not None and attr.name in ("href", "xlink:href"):
            replacement = f'{lead}{attr.name}="{links.redirect(redirect, url)}" {note}="{shown}"'
        out += [document[pos : attr.start], replacement]
        pos = attr.end
        note = NOTE_ATTR  # a second rewritten attribute must not add a second title
        if tag.name == "a":
            shown_host = links.host(url)
    if not out:
        return None
    new_tag = "".join(out) + document[pos : tag.end]
    return new_tag + _real_host_label(shown_host) if shown_host else new_tag


def _real_host_label(host: str) -> str:
    """Visible before the link text: where the link really went (defanged)."""
    return f'<span {HOST_ATTR} style="{_HOST_STYLE}">&#9888; {html.escape(host)} &#8250; </span>'


def _hosts_absent(document: str, hosts: frozenset[str]) -> bool:
    """True when no text of ``document`` can hold a bare host of ``hosts`` (then a text
    token without ``://`` is left as it is without being read)."""
    pattern = _bare_host_pattern(hosts)
    if pattern is None:
        return True
    if document.isascii() and _ascii(hosts):
        folded = document.lower()
        return not any(host in folded for host in hosts)
    return False  # (each text token is read, as _defang_bare_hosts reads it)


def _rewrite_html(
    document: str, rewrite: LinkRewrite, only: Selection | None = LINK_ATTRIBUTES
) -> str:
    """Edits at token offsets (conditional-comment contents included); other bytes stay.
    ``only``: the attributes read (None: all, the reference the selection is tested
    against)."""
    out: list[str] = []
    pos = 0
    links = _Links(rewrite)
    targets = rewrite.targets
    # A text token changes only where it holds "://" or one of the hosts (defang_links_text)
    no_hosts = _hosts_absent(document, targets.hosts)
    find = document.find
    for token in tokenize(document, only):
        if type(token) is Tag:
            if token.end_tag or not token.attrs:  # (most tags: none of the link names)
                continue
            new = _rewrite_tag(document, token, links)
        elif type(token) is Text and token.kind in ("data", "rcdata", "cdata"):
            if no_hosts and find("://", token.start, token.end) < 0:
                continue
            raw = document[token.start : token.end]
            new = defang_links_text(raw, targets, entities=token.kind != "cdata")
            if new == raw:
                continue
        else:
            continue
        if new is None or token.start < pos:
            continue
        out += [document[pos : token.start], new]
        pos = token.end
    out.append(document[pos:])
    return "".join(out)


def defang_links_html(document: str, rewrite: LinkRewrite | LinkTargets) -> str:
    """Neutralise the links of ``document`` that the targets name; all other bytes stay.

    A matching ``href`` (``<a>``, ``<area>``, Outlook VML buttons, also inside
    ``<!--[if mso]>`` blocks), ``<form action>`` or ``formaction`` becomes a ``title``
    holding the defanged URL (``data-tocsin-defanged`` when the tag has a title); in
    redirect mode an ``href`` points to the warning page instead. The link text stays,
    preceded in an ``<a>`` by a visible label with the real host (``⚠ evil[.]fr ›``).
    Text between tags is defanged like plain text; ordinary comments are left alone.
    """
    if isinstance(rewrite, LinkTargets):
        rewrite = LinkRewrite(rewrite)
    if not rewrite.targets:
        return document
    return _rewrite_html(document, rewrite)
