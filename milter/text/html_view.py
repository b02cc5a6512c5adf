"""What the scanner reads of an HTML part, in one pass: the visible text and the link events.

Visible text (MIME view, phrase checks) and the link scan (:mod:`milter.links._html`) are
both defined over the tokens of :mod:`milter.text.html` (:func:`reference_visible_text`,
:func:`link_events`). Building every token as an object, attributes decoded, and walking
the tokens twice cost ~2–3 µs a token in Python (a newsletter has ~1,500); this module
reads the same tokenizer's input once and keeps only what those two readers use:

- the text a reader sees (the same string as :func:`reference_visible_text`);
- the *link events*: the decoded data of each text token (data or CDATA), and the tags
  the link scan can act on — ``<a>``, ``</a>``, ``head``/``template``/``body``, and start
  tags with an attribute that can carry a URL (``href``, ``src``, ``background``,
  ``action`` in a name, or an ``img``/``meta``); every other tag is a no-op for the link
  scan, so it is neither built nor decoded.

The reader advances by one compiled step pattern (``_STEP``): each match is a well-formed
tag (the tokenizer's ``_FAST_TAG``), a run of comments (ordinary and bogus comments,
``<!…>``, ``<?…>``, ``</1…>``: a space each in the visible text, nothing for links, so a
run of any length is one step), a tag the fast pattern refuses (it runs to the end of
the document: the reading stops), or another markup start (Outlook conditional comments,
CDATA, ``</>``), which the tokenizer's own state machine reads, as it reads raw text and
SVG/MathML, one token at a time: both paths share one definition of HTML. Property tests
check the view equals the token-based definitions on generated markup and the benchmark
corpus, and that a comment flood is a fixed number of steps.

Most of a document is *quiet regions*: text and well-formed tags that change no state
(in a newsletter, everything between ``<body>`` and its end). A region is read in bulk
(:meth:`_Reader.region`), not one step a tag: one search for where it ends, one
``re.split`` into text and tags, the visible text joined with a separator per tag and
decoded at once (a character reference never runs over the separators), and the link
events by one pass over the tags (``filter`` keeps the text tokens and the link tags in
order): the same text and the very same events as one step a tag, property-tested
against the step path alone on markup aimed at the regions' edges
(``tests/text/test_html_view_regions.py``, where deliberately broken regions are caught).

Why not a compiled parser (selectolax/lexbor, lxml, html5-parser): measured ~10× faster,
but they build a tree, and tree construction moves or drops what the token reading sees
(a second ``<form>``, tags inside ``<select>``, text in ``<head>`` moved into the body,
foster-parented table text, conditional comments kept as comments); see
``docs/performance.md`` ("HTML view, session 5").
"""

from __future__ import annotations

import html as _html
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from typing import NamedTuple, cast

from milter.text.html import (
    _ATTRIBUTE,
    _FAST_ATTRIBUTES,
    _FAST_NAME,
    _FAST_TAG,
    _FAST_TAIL,
    _FOREIGN,
    _LEGACY_NAMES,
    _STATEFUL,
    _TAG_OPEN,
    Comment,
    Tag,
    Text,
    Token,
    _attr_value,
    _name_tree,
    _Tokenizer,
    tokens,
)

__all__ = [
    "Element",
    "HtmlView",
    "LinkEvent",
    "collapse_spaces",
    "events_of",
    "link_events",
    "reference_visible_text",
    "view",
    "visible_text",
]


class Element(NamedTuple):
    """A tag the link scan acts on: lower-case name, end tag or not, and its attributes
    (lower-case names, values decoded, the first of duplicate names kept). The mapping
    belongs to a cached view shared between readers: read it, never change it."""

    name: str
    end_tag: bool
    attrs: dict[str, str]


LinkEvent = str | Element
"""A text token's data (str) or a tag the link scan acts on, in document order."""

_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "tr", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "table"}
)
_HIDDEN = frozenset({"head", "template"})
_BLANK_LINES = re.compile(r"\n\s*\n+")

# Tags the link scan acts on whatever their attributes (anchors, hidden regions), those
# it reads an attribute of by name (img alt, meta refresh), and the pieces of attribute
# names that can carry a URL (href, xlink:href, src, background, action, formaction). A
# start tag with none of these is a no-op for the link scan. IGNORECASE matches every
# character whose lower case is one of these letters (Kelvin sign included).
_LINK_START_TAGS = frozenset({"a", "head", "template", "body"})
_LINK_ATTR_TAGS = frozenset({"img", "meta"})
_LINK_END_TAGS = frozenset({"a", "head", "template"})
_URL_ATTRIBUTE = re.compile(r"href|src|background|action", re.IGNORECASE)
_URL_WORD = re.compile(r"href|src|background|action")  # (the same, in lower-case ASCII text)
# Names the inline path hands to the careful one: they change the hidden state or the
# tokenizer's state, or are link tags whatever their attributes.
_CAREFUL = _HIDDEN | {"body"} | _STATEFUL
# What the inline path does with a tag, by lower-case name: a separator only (inline: a
# space, block: a line break), an event for a link tag (img/meta when it has attributes,
# <a> always), or the careful path. Common names are listed so that a name already in
# lower case is looked up without lower-casing it; any other name is lower-cased first.
_INLINE, _BLOCK, _LINK_ATTR, _ANCHOR, _CAREFUL_TAG = "inline", "block", "link", "a", "careful"
_KINDS: dict[str, str] = {
    **dict.fromkeys(
        [
            "span",
            "font",
            "b",
            "strong",
            "em",
            "i",
            "u",
            "s",
            "small",
            "big",
            "sup",
            "sub",
            "center",
            "tbody",
            "thead",
            "tfoot",
            "col",
            "colgroup",
            "caption",
            "hr",
            "ul",
            "ol",
            "dl",
            "dt",
            "dd",
            "blockquote",
            "pre",
            "code",
            "html",
            "link",
            "base",
            "area",
            "form",
            "input",
            "button",
            "label",
            "select",
            "option",
            "o:p",
            "v:roundrect",
            "v:rect",
            "v:fill",
            "v:textbox",
        ],
        _INLINE,
    ),
    **dict.fromkeys(_BLOCK_TAGS, _BLOCK),
    **dict.fromkeys(_LINK_ATTR_TAGS, _LINK_ATTR),
    "a": _ANCHOR,
    **dict.fromkeys(_CAREFUL, _CAREFUL_TAG),
}
_SPACES = "\t\r\f\v\u00a0"
# One step of the reader: one match from where the last ended (``finditer``), the text
# before it being a text token. The alternatives, by what the reader does:
# - a well-formed tag (``_FAST_TAG``: its groups are _SLASH, _NAME, _ATTRS, _TAIL);
# - a run of comments of any kind that are no more than a space in the visible text and
#   nothing for the link scan (a comment that is no conditional one, a bogus comment
#   ``<!…>``, ``<?…>``, ``</1…>``, each up to its end as the state machine reads it; runs
#   of them are one match, their spaces being one space once collapsed);
# - a tag ``_FAST_TAG`` refuses: it runs to the end of the document (``_TAG_OPEN``);
# - any other markup start (``<!--[`` conditional comments, ``<![CDATA[``, ``</>``, ``</``
#   at the end): the tokenizer's state machine reads that token.
# Any other "<" is text, in both readings. The comment rules (``_Tokenizer._comment``):
# ``<!-->`` and ``<!--->`` are empty comments, a comment ends at the first ``-->`` or
# ``--!>``, or at the end of the document; a bogus comment at the next ">" or the end.
_COMMENT = (  # one comment of those kinds, after its "<"
    r"(?:!--(?:-?>|(?!\[)(?s:.)*?(?:--!?>|\Z))"
    r"|!(?!--|\[CDATA\[)[^>]*+(?:>|\Z)"
    r"|\?[^>]*+(?:>|\Z)"
    r"|/[^A-Za-z>][^>]*+(?:>|\Z))"
)
# Every alternative after one literal "<": the engine then skips text to the next "<" in
# C (a pattern starting with a group or a lookahead is tried at every character).
_STEP = re.compile(
    r"<(?:"
    + _FAST_TAG.pattern.removeprefix("<")
    + r"|("
    + _COMMENT
    + r"(?:<"
    + _COMMENT
    + r")*+)|("
    + _TAG_OPEN.pattern.removeprefix("<")
    + r")|([!/?]))"
)
# _STEP's groups: _FAST_TAG's (end-tag slash, name, attribute list, tail), then the run of
# comments, the refused tag, the other markup start.
_SLASH, _NAME, _ATTRS, _TAIL, _COMMENTS, _CUT = 1, 2, 3, 4, 5, 6

# How often (characters of markup read) the reader asks its caller whether to stop.
_CHECK_EVERY = 32 * 1024

# A *quiet region*: text and well-formed tags that change no state, read in bulk
# (:meth:`_Reader.region`) instead of one ``_STEP`` a tag. A region starts where a text
# token starts and runs to the first markup that is no such tag (``_STOP``: "<!", "<?",
# "</" and no letter, a careful start tag, a careful end tag that changes a state, names
# in any case), at most _REGION_CHARS further. ``_SPLIT`` splits it into text and tags:
# ``_FAST_TAG``'s reading in two groups, not four (each group split out costs a string
# and a list slot a tag): the text, then per tag its name after its end-tag slash and its
# attribute list with its tail, and the text after the last tag. A tag it does not read
# whole is one that runs to the end of the region (cut by the region's end, by a stop
# inside one of its attribute values, or refused): the split's other alternative takes
# all of it at once (no group set) and the region ends before it. A region with fewer
# than _REGION_MIN_TAGS "<" is left to the step path (one step a tag costs less for a
# few tags), and the next region is tried further and further on while they miss
# (_REGION_BACKOFF: a stop inside every tag's attributes costs a few tries, not one a tag).
_REGION_CHARS = _CHECK_EVERY
_REGION_MIN_TAGS = 4
_REGION_BACKOFF = 8


def _any_case(names: Iterable[str]) -> str:
    """A pattern for the tag names ``names`` written in any case (a name whose lower case
    is one of them) and ending there, as a tree of their letters led by a class of their
    first letters: the compiled search leaves most other names at their first letter."""

    def cased(letter: str) -> str:  # every character whose lower case is this letter
        return "".join(
            sorted({c for c in (letter, letter.upper(), "\u212a") if c.lower() == letter})
        )

    def tree(names: list[str]) -> str:
        first: dict[str, list[str]] = {}
        for name in names:
            first.setdefault(name[:1], []).append(name[1:])
        branches = []
        for letter, rests in sorted(first.items()):
            rest = tree([r for r in rests if r]) if any(rests) else ""
            optional = "?" if "" in rests and rest else ""
            branches.append(
                f"[{re.escape(cased(letter))}]" + (f"(?:{rest}){optional}" if rest else "")
            )
        return "|".join(branches)

    names = sorted(names)
    firsts = "".join(cased(letter) for letter in sorted({name[0] for name in names}))
    return f"(?=[{re.escape(firsts)}])(?:{tree(names)})[\\t\\n\\f\\r />]"


# End tags that change a state (hidden text, foreign content); any other careful end tag
# reads as a quiet one (a separator, no event).
_CAREFUL_END = _HIDDEN | _FOREIGN
_STOP = re.compile(
    r"<(?:[!?]|/(?![A-Za-z])|/" + _any_case(_CAREFUL_END) + "|" + _any_case(_CAREFUL) + ")"
)
_SPLIT = re.compile(
    r"<(/?" + _FAST_NAME + r")(" + _FAST_ATTRIBUTES + _FAST_TAIL + r")>"
    r"|<(?=/?[A-Za-z])(?s:.)*+"
)
# A region's tag by its lower-case name, end tags with their "/": its separator.
_SEPARATOR = {**dict.fromkeys(_BLOCK_TAGS, "\n"), **{"/" + name: "\n" for name in _BLOCK_TAGS}}
# What _FAST_TAIL reads: a tag's attribute list and tail hold an attribute when they hold
# any other character.
_TAIL_CHARS = "\t\n\f\r /"


_A_END = Element("a", True, {})
_new = tuple.__new__  # a named tuple built without its generated __new__ (a Python frame)


class HtmlView(NamedTuple):
    """``text``: the visible text; ``events``: the link events, or None when the document
    has more of them than are kept (the link scan then streams the tokens); ``complete``
    False when the reading was stopped (``text`` is then what was read before)."""

    text: str
    events: tuple[LinkEvent, ...] | None
    complete: bool = True


class _Stopped(Exception):
    """The caller's ``stop`` said to stop reading."""


# A run of spaces (after one pass of ``str.replace("  ", " ")``, what is left of the runs
# of three spaces or more); at most _LONG_RUNS of them are cut one by one. Few: a
# newsletter built by a program leaves one or two (its head's tags), but indented markup
# leaves hundreds (the shared corpus: ~300 a part), and cutting 64 of them one by one
# before the passes cost that corpus 21 % more instructions than the passes alone.
_SPACE_RUN = re.compile(" +")
_LONG_RUNS = 8


def collapse_spaces(text: str) -> str:
    """Each run of spaces, tabs, CR, FF, VT and no-break spaces made one space, by
    ``str.replace`` in C (a pattern would be tried at every character). One pass of
    "  " -> " " leaves only what remains of runs of three spaces or more: the first few
    of those are cut where ``find`` lands (in a document, a few runs of tags with no text
    between them: 2-3 whole passes fewer), any others by further whole passes (a flood
    of long runs costs what it did, not a step each)."""
    for space in _SPACES:
        if space in text:
            text = text.replace(space, " ")
    if "  " not in text:
        return text
    text = text.replace("  ", " ")
    at = text.find("  ")
    if at < 0:
        return text
    pieces: list[str] = []
    start = 0
    for _ in range(_LONG_RUNS):
        run = _SPACE_RUN.match(text, at)
        assert run is not None
        pieces.append(text[start : at + 1])
        start = run.end()
        at = text.find("  ", start)
        if at < 0:
            pieces.append(text[start:])
            return "".join(pieces)
    rest = text[start:]  # (starts after a run: no run spans the cut)
    while "  " in rest:
        rest = rest.replace("  ", " ")
    pieces.append(rest)
    return "".join(pieces)


def _finish(parts: list[str]) -> str:
    return _BLANK_LINES.sub("\n", collapse_spaces("".join(parts))).strip()


def reference_visible_text(doc: str) -> str:
    """The visible text by definition, over the tokens: one space per tag or comment (a
    line break for block tags), text tokens as read (character references decoded),
    nothing inside ``head``/``template``, raw text or ``title``."""
    out: list[str] = []
    append = out.append
    hidden = 0
    for token in tokens(doc):
        if type(token) is Tag:
            name = token.name
            if name in _HIDDEN:
                hidden = max(hidden - 1, 0) if token.end_tag else hidden + 1
            elif name == "body" and not token.end_tag:
                hidden = 0
            append("\n" if name in _BLOCK_TAGS else " ")
        elif type(token) is Text:
            if not hidden and (token.kind in ("data", "cdata") or token.parent == "textarea"):
                append(token.data)
        else:
            append(" ")
    return _finish(out)


def _element(tag: Tag) -> Element:
    attrs: dict[str, str] = {}
    for attr in tag.attrs:
        attrs.setdefault(attr.name, attr.value)
    return Element(tag.name, tag.end_tag, attrs)


def link_events(stream: Iterable[Token]) -> Iterator[LinkEvent]:
    """Every tag and the data of every data/CDATA text token of a token stream: the link
    events by definition (:func:`view` keeps the same text and only the tags that are
    not a no-op for the link scan)."""
    for token in stream:
        if type(token) is Tag:
            yield _element(token)
        elif type(token) is Text and token.kind in ("data", "cdata"):
            yield token.data


# _ATTRIBUTE with an empty alternative for its optional value: the same matches (an
# optional group is its contents, else nothing), without sre's repeat of a group (~10 %
# fewer instructions a findall on the corpus's attribute lists).
assert _ATTRIBUTE.pattern.endswith(")?")
_ATTRIBUTES = re.compile(_ATTRIBUTE.pattern.removesuffix(")?") + "|)")
# Where a character reference may start in an attribute value: every match of
# _attr_value's (``#``, a name and ``;``, a legacy name) starts with one of these, so a
# value with none is its own decoding. Many links write "&" bare ("?a=1&utm_source=x"),
# and _attr_value tries all ~100 legacy names one by one at each "&"; this is their tree.
# html.py's letter tree with nothing after a name: a name that another starts with ends
# its branch (only where a match may start matters here).
_REFERENCE = re.compile(r"&(?:#|[A-Za-z][A-Za-z0-9]*+;|" + _name_tree(_LEGACY_NAMES, "") + ")")


def _attributes(raw: str) -> dict[str, str]:
    """The attributes of a well-formed tag, from its attribute list (with or without its
    tail: no attribute starts there), as the tokenizer reads them (``_Tokenizer._attrs``):
    names lower-cased, first one kept."""
    attrs: dict[str, str] = {}
    for name, dq, sq, bare in _ATTRIBUTES.findall(raw):
        key = name.lower()
        if key not in attrs:
            value = dq or sq or bare
            attrs[key] = (
                value
                if "&" not in value or _REFERENCE.search(value) is None
                else _attr_value(value)
            )
    return attrs


class _Reader:
    """One pass over a document and the conditional comments it opens (same state)."""

    def __init__(self, keep_events: bool, stop: Callable[[], bool] | None) -> None:
        self.parts: list[str] = []
        self.events: list[LinkEvent] | None = [] if keep_events else None
        self.hidden = 0
        self.stop = stop
        self.misses = 0  # regions tried in a row that were not worth reading

    def read(self, tok: _Tokenizer) -> None:
        """``_Tokenizer.run``, consuming each token as it is read, one ``_STEP`` match a
        step: well-formed tags of no interest and runs of comments inline, every other
        token through :meth:`token`."""
        doc, size = tok.doc, tok.size
        parts, events, kinds = self.parts, self.events, _KINDS.get
        pos = text_start = quiet_from = 0  # (no region is tried before quiet_from)
        check_at = _CHECK_EVERY if self.stop is not None else size
        while pos < size:
            for found in _STEP.finditer(doc, pos):
                lt, end = found.span()
                if lt > check_at:
                    check_at = self.check(lt)
                slash, name, raw_attrs, _tail, _comments, _cut, _other = found.groups()
                if name is None:  # comments, a refused tag or other markup
                    read = self.not_a_tag(tok, found, text_start)
                    if read is None:
                        return
                    pos, text_start = read
                    events = self.events
                    if pos != end:
                        break  # (a new search from where the state machine stopped)
                    continue
                kind = kinds(name)
                if kind is None:  # not written in lower case, or a rare name
                    name = name.lower()
                    kind = kinds(name, _INLINE)
                if kind is not _CAREFUL_TAG and lt >= quiet_from:
                    read_to, quiet_from = self.region(doc, text_start, lt)
                    if read_to > lt:  # this tag and the quiet region after it, in bulk
                        pos = text_start = read_to
                        events = self.events
                        break
                if text_start < lt:
                    events = self.text(doc[text_start:lt])
                text_start = end
                if kind is _CAREFUL_TAG:
                    text_start = self.careful_tag(tok, found, name)
                    events = self.events
                    if text_start != end:
                        pos = text_start
                        break  # raw text was read: a new search from its end
                    continue
                # a tag that changes no state, read alone (no region worth reading here)
                parts.append("\n" if kind is _BLOCK else " ")
                if events is not None and (
                    kind is _ANCHOR
                    or (
                        raw_attrs
                        and not slash
                        and (kind is _LINK_ATTR or _URL_ATTRIBUTE.search(raw_attrs) is not None)
                    )
                ):
                    events = self.link_tag(found, name)
            else:
                break
        if text_start < size:
            self.token(tok._text(text_start, size))

    def text(self, raw: str) -> list[LinkEvent] | None:
        """A text token read by the step path (not empty); the events kept."""
        text = raw if "&" not in raw else _html.unescape(raw)
        if not self.hidden:
            self.parts.append(text)
        events = self.events
        if events is not None:
            events.append(text)
            if len(events) > _KEPT_EVENTS:
                self.events = events = None  # too many to keep
        return events

    def region(self, doc: str, start: int, lt: int) -> tuple[int, int]:
        """Read the quiet region starting at ``start`` (where a text token starts, the
        first tag at ``lt``) in bulk: the same visible text and link events as one step a
        tag. Returns where the region ends (``start`` when nothing was read) and where
        the next one is tried at the earliest."""
        size = len(doc)
        window = start + _REGION_CHARS
        stop = _STOP.search(doc, start, window)
        end = stop.start() if stop is not None else min(window, size)
        at = lt  # (the region's first "<"; a count of the others would read it all)
        for _ in range(1, _REGION_MIN_TAGS):
            at = doc.find("<", at + 1, end)
            if at < 0:  # fewer than _REGION_MIN_TAGS "<" in it
                return start, self.missed(lt, end)
        # Three pieces a tag: the text before it, its name (after "/" in an end tag), its
        # attributes and tail; then the text after the last tag.
        pieces = _SPLIT.split(doc[start:end])
        if len(pieces) > 1 and pieces[-3] is None:  # a tag that runs to the region's end
            del pieces[-3:]
            end = start + sum(map(len, pieces)) + 2 * (len(pieces) // 3)
        elif stop is None and end < size:  # cut: the text after its last tag may go on
            end -= len(pieces[-1])
            pieces[-1] = ""
        count = len(pieces) // 3
        if not count:  # (the tag at lt runs to the region's end: a stop inside it…)
            return start, self.missed(lt, end)
        self.misses = 0
        texts = pieces[0::3]
        names = pieces[1::3]
        written = "".join(names)  # (most documents write every name in lower case; a
        if written != written.lower():  # name that lower-casing changes changes them all)
            names = list(map(str.lower, names))
        separators = list(map(_SEPARATOR.get, names, repeat(" ")))
        if self.hidden:
            self.parts.append("".join(separators))
            plain = False
        else:
            # The visible text: each text token decoded, a separator for each tag. A
            # character reference never runs over a space or a line break, so decoding the
            # whole is decoding each token (html.unescape's names stop at both).
            spread: list[str] = [""] * (2 * count + 1)
            spread[0::2] = texts
            spread[1::2] = separators
            text = "".join(spread)
            plain = "&" not in text
            self.parts.append(text if plain else _html.unescape(text))
        events = self.events
        if events is None:
            return end, end
        # Each tag's event (None for a tag the link scan passes over), by the rule of the
        # step path: <a> and </a>; a start tag with attributes that is an img/meta or
        # has a URL word in its attribute list (ASCII lists searched in lower case). A
        # tail alone ("<img/>") is no attribute; it holds no URL word (no letter).
        lower_search, search = _URL_WORD.search, _URL_ATTRIBUTE.search
        slots = [
            _new(Element, ("a", False, _attributes(raw) if raw else {}))
            if name == "a"
            else _A_END
            if name == "/a"
            else _new(Element, (name, False, _attributes(raw)))
            if raw
            and name[0] != "/"
            and (
                (name in _LINK_ATTR_TAGS and raw.strip(_TAIL_CHARS))
                or (lower_search(raw.lower()) if raw.isascii() else search(raw)) is not None
            )
            else None
            for name, raw in zip(names, pieces[2::3], strict=True)
        ]
        # The events in document order: the text tokens (none empty), decoded (a token
        # may decode to nothing: it is still an event), and those tags.
        ordered: list[LinkEvent | None] = [None] * (2 * count + 1)
        ordered[0::2] = texts
        ordered[1::2] = slots
        if plain:
            events.extend(filter(None, ordered))
        else:
            unescape = _html.unescape
            decoded = [
                unescape(event) if type(event) is str and "&" in event else event
                for event in filter(None, ordered)
            ]
            events.extend(cast("list[LinkEvent]", decoded))
        if len(events) > _KEPT_EVENTS:
            self.events = None  # too many to keep
        return end, end

    def missed(self, lt: int, end: int) -> int:
        """No region worth reading at ``lt`` (a stop close by or inside this tag): where
        the next region is tried, further and further while the tries miss."""
        self.misses += 1
        return max(end, lt + (_REGION_BACKOFF << min(self.misses, 12)))

    def not_a_tag(
        self, tok: _Tokenizer, found: re.Match[str], text_start: int
    ) -> tuple[int, int] | None:
        """A ``_STEP`` match that is no well-formed tag: the next search position and
        text start, None when the reading ends (a tag that runs to the end)."""
        lt, end = found.span()
        if found.group(_COMMENTS) is None and found.group(_CUT) is None:
            return self.markup(tok, lt, text_start)  # the state machine reads one token
        if text_start < lt:
            self.token(tok._text(text_start, lt))
        if found.group(_CUT) is not None:  # dropped, and all after it
            return None
        self.parts.append(" ")  # comments: a space each, made one by collapse_spaces
        return end, end

    def link_tag(self, found: re.Match[str], name: str) -> list[LinkEvent] | None:
        """A well-formed tag the link scan acts on, as an event; the events kept."""
        events = self.events
        assert events is not None
        slash, raw_attrs = found.group(_SLASH, _ATTRS)
        if slash:
            events.append(_A_END)  # the only end tag the inline path sends here
        else:
            attrs = _attributes(raw_attrs) if raw_attrs else {}
            events.append(Element(name, False, attrs))
        if len(events) > _KEPT_EVENTS:
            self.events = None  # too many to keep
        return self.events

    def careful_tag(self, tok: _Tokenizer, found: re.Match[str], name: str) -> int:
        """A well-formed tag that may change a state or is a link tag: read as a token."""
        start, end = found.start(), found.end()
        slash, raw_attrs, tail = found.group(_SLASH, _ATTRS, _TAIL)
        attrs = tok._attrs(*found.span(_ATTRS)) if raw_attrs else ()
        tag = Tag(name, attrs, tok.offset + start, tok.offset + end, bool(slash), tail[-1:] == "/")
        self.token(tag)
        if slash:
            if tok.foreign and name in _FOREIGN:
                tok.foreign -= 1
            return end
        if tok.foreign or name in _STATEFUL:
            return self.after_start_tag(tok, tag, end)
        return end

    def check(self, at: int) -> int:
        """Ask the caller whether to stop; where to ask next."""
        if self.stop is not None and self.stop():
            raise _Stopped
        return at + _CHECK_EVERY

    def markup(self, tok: _Tokenizer, lt: int, text_start: int) -> tuple[int, int] | None:
        """What the state machine reads at ``lt`` (the tokenizer's uncommon path); the
        next search position and text start, None at a tag cut by the end. A tag
        ``_FAST_TAG`` refused is one (``_TAG_OPEN``): it is not read attribute by attribute."""
        read = (None, -1) if _TAG_OPEN.match(tok.doc, lt) else tok._markup(lt)
        if read is None:  # "<" followed by anything else is text
            return lt + 1, text_start
        token, end = read
        if text_start < lt:
            self.token(tok._text(text_start, lt))
        if end < 0:  # a tag cut by the end of the document is dropped
            return None
        if token is None:  # "</>": nothing at all
            return end, end
        self.token(token)
        if type(token) is Tag:
            if not token.end_tag and (tok.foreign or token.name in _STATEFUL):
                end = self.after_start_tag(tok, token, end)
        elif type(token) is Comment and token.conditional:
            inner = tok.conditional(token, lt + 4)
            if inner is not None:
                self.read(inner)
        return end, end

    def after_start_tag(self, tok: _Tokenizer, tag: Tag, end: int) -> int:
        """The raw text / RCDATA after ``tag``; where data resumes."""
        state = tok._after_start_tag(tag, end)
        while True:
            try:
                self.token(next(state))
            except StopIteration as stop:
                resume: int = stop.value
                return resume

    def token(self, token: Token) -> None:
        """One token, by the definitions (:func:`reference_visible_text`,
        :func:`link_events`, keeping only tags that are not a no-op for links)."""
        if type(token) is Tag:
            name = token.name
            if name in _HIDDEN:
                self.hidden = max(self.hidden - 1, 0) if token.end_tag else self.hidden + 1
            elif name == "body" and not token.end_tag:
                self.hidden = 0
            self.parts.append("\n" if name in _BLOCK_TAGS else " ")
            if self.events is not None and _is_link_tag(token):
                self.events.append(_element(token))
        elif type(token) is Text:
            kind = token.kind
            if kind in ("data", "cdata"):
                text = token.data
                if not self.hidden:
                    self.parts.append(text)
                if self.events is not None:
                    self.events.append(text)
            elif kind == "rcdata" and token.parent == "textarea" and not self.hidden:
                self.parts.append(token.data)
        else:
            self.parts.append(" ")


def _is_link_tag(tag: Tag) -> bool:
    if tag.end_tag:
        return tag.name in _LINK_END_TAGS
    if tag.name in _LINK_START_TAGS or (tag.attrs and tag.name in _LINK_ATTR_TAGS):
        return True
    return any(_URL_ATTRIBUTE.search(attr.name) for attr in tag.attrs)


# Like the token cache of milter.text.html: the last few documents' views, each with at
# most _KEPT_EVENTS link events (a document with more keeps its text only, and the link
# scan streams its tokens). Documents over _KEPT_CHARS keep no events and no view.
_KEPT_CHARS = 256 * 1024
_KEPT_EVENTS = 16_384
_KEPT_DOCS = 4
_cache: OrderedDict[str, HtmlView] = OrderedDict()
_cache_lock = threading.Lock()


def _read(doc: str, keep_events: bool, stop: Callable[[], bool] | None = None) -> HtmlView:
    reader = _Reader(keep_events, stop)
    try:
        reader.read(_Tokenizer(doc, 0, 0))
    except _Stopped:
        return HtmlView(_finish(reader.parts), None, complete=False)
    events = reader.events
    kept = None if events is None or len(events) > _KEPT_EVENTS else tuple(events)
    # (read() stops keeping events past the count where most are added; the state
    # machine's path adds one per token, and the count is checked again here)
    return HtmlView(_finish(reader.parts), kept)


def view(doc: str, stop: Callable[[], bool] | None = None) -> HtmlView:
    """The visible text and link events of ``doc`` (shared by the MIME view and the
    link scan: the last few documents are kept). Every few tens of KB of markup the
    reader calls ``stop`` (e.g. "is the work budget spent?"); when it answers True the
    reading ends and the view, not kept, says it is incomplete."""
    if len(doc) > _KEPT_CHARS:
        return _read(doc, keep_events=False, stop=stop)
    with _cache_lock:
        kept = _cache.get(doc)
        if kept is not None:
            _cache.move_to_end(doc)
            return kept
    built = _read(doc, keep_events=True, stop=stop)
    if not built.complete:
        return built
    with _cache_lock:
        _cache[doc] = built
        while len(_cache) > _KEPT_DOCS:
            _cache.popitem(last=False)
    return built


def events_of(doc: str, stop: Callable[[], bool] | None = None) -> Iterable[LinkEvent] | None:
    """The link events of ``doc``: those of its view (shared with the visible text), or a
    stream over its tokens when the document is too large to keep them; None when
    ``stop`` said to stop reading the view. A stream ends early when ``stop`` says so
    while it is read: the caller asks ``stop`` again to tell a cut stream from a whole one."""
    if len(doc) <= _KEPT_CHARS:
        seen = view(doc, stop)
        if not seen.complete:
            return None
        if seen.events is not None:
            return seen.events
    stream = tokens(doc)
    return link_events(stream if stop is None else _until(stop, stream))


def _until(stop: Callable[[], bool], stream: Iterable[Token]) -> Iterator[Token]:
    """The tokens of ``stream`` until ``stop`` answers True, asked at the first token and
    again each time the tokens read have spanned another _CHECK_EVERY characters (a
    conditional comment's inner tokens count again: they are read again). The stream
    just ends there; the caller learns why from its own ``stop``. The link scan's own
    check falls every 256 events, and one event can be a tag of tens of KB: a large
    part streamed past a spent budget would run seconds over it without this."""
    read = 0
    check_at = 0
    for token in stream:
        if read >= check_at:
            if stop():
                return
            check_at = read + _CHECK_EVERY
        read += token.end - token.start
        yield token


def visible_text(doc: str) -> str:
    """The text a reader sees in ``doc`` (Outlook conditional blocks included), one space
    between inline runs and a line break at block boundaries."""
    return view(doc).text
