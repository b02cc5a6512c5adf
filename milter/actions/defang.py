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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from milter.actions.targets import LinkTargets
from milter.text.html import (
    _CLOSING,
    _FAST_ATTRIBUTE,
    _FAST_TAG,
    _STATEFUL,
    _TAG_OPEN,
    Selection,
    Tag,
    Text,
    Token,
    _Tokenizer,
    tokenize,
)
from milter.text.url import bracket_dots, defang_url, host_of

__all__ = [
    "LinkMemo",
    "LinkRewrite",
    "defang_links_html",
    "defang_links_text",
    "defang_url",
    "host_of",
]

_URL = re.compile(r"""(?i)\b(?:https?|ftp)://[^\s<>"'`]+""")
_TRAILING = ".,;:!?)]}'\""
_MAX_NESTED = 4  # URLs nested in a URL, defanged in one call
# Entries kept in each table of a message's LinkMemo (URLs, hosts): ~2x the links a policy
# reads by default (max_links 2000); a part with more distinct links works the rest out
# at each use. Bounds the memo to a few MB whatever the message holds.
MEMO_LIMIT = 4096
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


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """The matches of ``_URL.finditer(text)``, looked for only where ``://`` stands: a
    match is a scheme of 3 to 5 characters right before one, so each is tried at those
    three starts, leftmost first (the pattern starts with ``\\b`` and a group, so the
    engine would try it at every character: ~0.4 ms a pass over a 27 KB text part)."""
    find, match = text.find, _URL.match
    pos = 0
    sep = find("://")
    while sep >= 0:
        for start in (sep - 5, sep - 4, sep - 3):
            found = match(text, start) if start >= pos else None
            if found is not None:
                yield found
                pos = found.end()
                sep = find("://", pos)
                break
        else:  # no URL ends its scheme at this "://"
            sep = find("://", sep + 1)


def _sub_urls(fix: Callable[[re.Match[str]], str], text: str) -> str:
    """``_URL.sub(fix, text)``."""
    out: list[str] = []
    pos = 0
    for found in _url_matches(text):
        out += [text[pos : found.start()], fix(found)]
        pos = found.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


_Kept = TypeVar("_Kept")


def _kept(table: dict[str, _Kept], key: str, make: Callable[[str], _Kept]) -> _Kept:
    """``make(key)``, kept in ``table`` while it holds fewer than :data:`MEMO_LIMIT`."""
    found = table.get(key)
    if found is None:
        found = make(key)
        if len(table) < MEMO_LIMIT:
            table[key] = found
    return found


class LinkMemo:
    """What each link URL of one message becomes, worked out once per URL and shared by
    its parts: a newsletter repeats its tracking links (the same ``href`` on the image and
    the button) and its text alternative repeats the HTML's. Hosts repeat too: the label
    naming a host is built once per host.

    Each table keeps at most :data:`MEMO_LIMIT` entries (the first ones met); a URL past
    that is worked out again at each use, with the same result."""

    __slots__ = ("_defanged", "_labels", "_matches", "_redirects", "_shown", "rewrite")

    def __init__(self, rewrite: LinkRewrite) -> None:
        self.rewrite = rewrite
        self._matches: dict[str, bool] = {}
        self._defanged: dict[str, str] = {}
        self._shown: dict[str, str] = {}
        self._redirects: dict[str, str] = {}
        self._labels: dict[str, str] = {}

    def matches(self, url: str) -> bool:
        """``targets.url_matches(url)``."""
        return _kept(self._matches, url, self.rewrite.targets.url_matches)

    def defanged(self, url: str) -> str:
        """``defang_url(url)``."""
        return _kept(self._defanged, url, defang_url)

    def shown(self, url: str) -> str:
        """The defanged URL, escaped for an attribute value."""
        return _kept(self._shown, url, self._escaped_defanged)

    def redirect(self, redirect: Callable[[str], str], url: str) -> str:
        """The warning-page URL, escaped for an attribute value."""
        return _kept(self._redirects, url, lambda u: html.escape(redirect(u), quote=True))

    def _escaped_defanged(self, url: str) -> str:
        return html.escape(self.defanged(url), quote=True)

    def label(self, url: str) -> str:
        """The visible label naming the host the link really leads to (defanged)."""
        host = self.rewrite.targets.destination(url)
        label = self._labels.get(host)
        if label is None:
            shown = bracket_dots(host) or self.defanged(url)[:80]
            label = _real_host_label(shown) if shown else ""
            # (without a host the label shows the URL itself: not kept under "")
            if host and len(self._labels) < MEMO_LIMIT:
                self._labels[host] = label
        return label


def _defang_text_urls(text: str, memo: LinkMemo, *, entities: bool) -> str:
    if "://" not in text:
        return text  # what _URL needs (an entity-written "&#58;//" is no URL to _URL either)

    def fix(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(_TRAILING)
        written = html.unescape(core) if entities else core
        if not memo.matches(written):
            return url
        return memo.defanged(core) + url[len(core) :]

    # A defanged URL may still hold a URL (``…/*http://evil.example``) that auto-linking
    # would find: repeat until stable, so one call does all a second call would.
    for _ in range(_MAX_NESTED):
        new = _sub_urls(fix, text)
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


def defang_links_text(
    text: str, targets: LinkTargets, *, entities: bool = False, memo: LinkMemo | None = None
) -> str:
    """Defang URLs and bare host names in plain text that ``targets`` names.

    ``entities``: the text is HTML character data (URLs are matched entity-decoded).
    ``memo``: the message's link work (its ``rewrite.targets`` must be ``targets``).
    """
    made_for = targets if memo is None else memo.rewrite.targets
    if made_for is not targets and made_for != targets:
        raise ValueError("the memo was made for other targets")
    if not targets or "." not in text:
        return text
    memo = memo or LinkMemo(LinkRewrite(targets))
    return _defang_bare_hosts(_defang_text_urls(text, memo, entities=entities), targets.hosts)


def _link_attr(tag_name: str, attr: str) -> bool:
    if attr == "formaction":
        return True
    if tag_name == "form":
        return attr == "action"
    return attr in ("href", "xlink:href") and tag_name not in _NOT_CLICKABLE


def _rewrite_tag(document: str, tag: Tag, links: LinkMemo) -> str | None:
    """The tag's new source text, or None when none of its links is a target."""
    note = ""  # title, or NOTE_ATTR when the tag has a title: chosen at the first target
    out: list[str] = []
    pos = tag.start
    label = ""
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
            label = links.label(url)
    if not out:
        return None
    return "".join(out) + document[pos : tag.end] + label


def _real_host_label(host: str) -> str:
    """Visible before the link text: where the link really went (defanged)."""
    return f'<span {HOST_ATTR} style="{_HOST_STYLE}">&#9888; {html.escape(host)} &#8250; </span>'


# What the rewriter leaves alone, read in one compiled match (``_QUIET``): runs of text
# holding no "://" (when the document holds none of the target hosts, nothing else in a
# text token is changed), each followed by a well-formed tag that changes no tokenizer
# state and has no link attribute, or by a run of ordinary comments. An end tag qualifies
# whatever its attributes (the rewriter changes start tags only; with no open svg/math an
# end tag changes no state). A start tag qualifies when its name is not one of
# ``_STATEFUL`` and none of its attribute names one of LINK_ATTRIBUTES' keys: read as
# ``_FAST_TAG`` reads it, with a lookahead refusing those names at each attribute (case
# folding in the pattern accepts more than ``str.lower``: a tag it refuses is only read
# the ordinary way). A tag refused, and everything else, is read by the tokenizer itself.
_LINK_NAME = r"(?i:" + "|".join(sorted(LINK_ATTRIBUTES.keys)) + r")[\t\n\f\r />=]"
_QUIET_TAG = (
    r"(?:/[A-Za-z][^\t\n\f\r />]*+(?:[\t\n\f\r /]*+(?>" + _FAST_ATTRIBUTE + r"))*+"
    r"|(?!(?i:" + "|".join(sorted(_STATEFUL)) + r")[\t\n\f\r />])[A-Za-z][^\t\n\f\r />]*+"
    r"(?:[\t\n\f\r /]*+(?>(?!" + _LINK_NAME + r")" + _FAST_ATTRIBUTE + r"))*+"
    r")[\t\n\f\r /]*+>"
)
# Markup that yields no token the rewriter acts on and leaves the reading where it was (in
# the data state, no svg/math open, at the top level), after its "<", read as the
# tokenizer reads it there: a comment up to its first "-->" or "--!>" ("<!-->", "<!--->"
# included) unless it starts with "[if" (an Outlook conditional comment, whose markup is
# read), a bogus comment ("<!x>", "<?x>", "</1>", and "<![CDATA[…>" outside svg/math) up
# to the first ">", and "</>" (nothing at all). Each may run to the end of the document.
_QUIET_MARKUP = (
    r"(?:!--(?:-?>|(?!(?i:\[if))(?s:.)*?(?:--!?>|\Z))"
    r"|!(?!--)[^>]*+(?:>|\Z)"
    r"|\?[^>]*+(?:>|\Z)"
    r"|/(?:>|[^A-Za-z>][^>]*+(?:>|\Z)))"
)
_QUIET = re.compile(r"(?:(?:[^<:]++|:(?!//))*+<(?:" + _QUIET_TAG + "|" + _QUIET_MARKUP + r"))*+")
# A quiet run, then (group 1) a text without "<" and a well-formed tag (``_FAST_TAG``'s
# groups, 2 to 5): one match for most stops of the quick reading.
_QUIET_THEN_TAG = re.compile(_QUIET.pattern + r"(?:([^<]*+)" + _FAST_TAG.pattern + ")?")


def _next_stop(doc: str, start: int, tok: _Tokenizer) -> tuple[int, re.Match[str] | None]:
    """Where the token reading from ``start`` (a token boundary in the data state, no
    svg/math open) is next at such a boundary after at least one token, and the tag
    ending there when that is a well-formed tag that changes no state (the reading up
    to it is then the text before it and that tag). The stop is the end of the next tag
    or comment, the start of the end tag of a raw-text or RCDATA element, or the end of
    ``doc`` (after a tag cut by the end, an ``svg``/``math``/``plaintext`` element)."""
    size = len(doc)
    pos = start
    while True:
        lt = doc.find("<", pos)
        if lt < 0 or lt + 1 >= size:
            return size, None
        found = _FAST_TAG.match(doc, lt)
        if found is not None:
            slash, name = found.group(1, 2)
            name = name.lower()
            if slash or name not in _STATEFUL:
                return found.end(), found
            closing = _CLOSING.get(name)
            if closing is None:  # svg, math, plaintext: the rest in one reading
                return size, None
            match = closing.search(doc, found.end())
            return (match.start() if match else size), None
        if _TAG_OPEN.match(doc, lt):  # a tag that runs to the end of the document
            return size, None
        read = tok._markup(lt)  # a comment, "</>", or no markup at all ("a < b")
        if read is None:
            pos = lt + 1
            continue
        return (size if read[1] < 0 else read[1]), None


def _quick_tokens(doc: str) -> Iterator[Token]:
    """The tokens of ``tokenize(doc, LINK_ATTRIBUTES)`` the rewriter can act on (start
    tags and text), with their offsets: the quiet runs (``_QUIET``) are skipped; a text
    and the ordinary tag after it are built as the tokenizer builds them; any other
    stretch up to the next stop is read by the tokenizer from a fresh start (the state
    it is in at those points)."""
    tok = _Tokenizer(doc, 0, 0, only=LINK_ATTRIBUTES)
    step = _QUIET_THEN_TAG.match
    size = len(doc)
    pos = 0
    while pos < size:
        found: re.Match[str] | None = step(doc, pos)
        assert found is not None  # (the pattern matches the empty string)
        name = found.group(3)
        if name is not None and (found.group(2) or name.lower() not in _STATEFUL):
            text_start, group = found.start(1), 1  # a quiet run, a text, an ordinary tag
            lt = found.end(1)
        else:
            pos = found.end() if name is None else found.start(1)
            if pos >= size:
                return
            end, found = _next_stop(doc, pos, tok)
            if found is None:
                yield from _Tokenizer(doc[pos:end], pos, 0, only=LINK_ATTRIBUTES).run()
                pos = end
                continue
            text_start, group = pos, 0
            lt = found.start()
        end = found.end()
        if text_start < lt:
            yield Text(doc[text_start:lt], text_start, lt)
        slash, name, attrs, tail = found.group(group + 1, group + 2, group + 3, group + 4)
        picked = tok._selected(*found.span(group + 3)) if attrs and not slash else ()
        if picked:
            yield Tag(name.lower(), picked, lt, end, False, tail[-1:] == "/")
        pos = end


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
    document: str,
    rewrite: LinkRewrite,
    only: Selection | None = LINK_ATTRIBUTES,
    memo: LinkMemo | None = None,
) -> str:
    """Edits at token offsets (conditional-comment contents included); other bytes stay.
    ``only``: the attributes read (None: all, the reference the selection is tested
    against). ``memo``: the message's link work, made for ``rewrite``."""
    out: list[str] = []
    pos = 0
    if memo is None:
        links = LinkMemo(rewrite)
    elif memo.rewrite is rewrite or memo.rewrite == rewrite:
        links = memo
    else:
        raise ValueError("the memo was made for another rewrite")
    targets = rewrite.targets
    # A text token changes only where it holds "://" or one of the hosts (defang_links_text)
    no_hosts = _hosts_absent(document, targets.hosts)
    find = document.find
    quick = only is LINK_ATTRIBUTES and no_hosts
    for token in _quick_tokens(document) if quick else tokenize(document, only):
        if type(token) is Tag:
            if token.end_tag or not token.attrs:  # (most tags: none of the link names)
                continue
            new = _rewrite_tag(document, token, links)
        elif type(token) is Text and token.kind in ("data", "rcdata", "cdata"):
            if no_hosts and find("://", token.start, token.end) < 0:
                continue
            raw = document[token.start : token.end]
            new = defang_links_text(raw, targets, entities=token.kind != "cdata", memo=links)
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


def defang_links_html(
    document: str, rewrite: LinkRewrite | LinkTargets, memo: LinkMemo | None = None
) -> str:
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
    return _rewrite_html(document, rewrite, memo=memo)
