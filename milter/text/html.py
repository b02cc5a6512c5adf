"""One HTML tokenizer for link extraction, visible text and the link rewriter.

It follows the WHATWG HTML tokenizer where it decides what a browser sees as a tag, an
attribute, a comment or text: attributes need no whitespace between them
(``<a class="x"href=…>``, ``<a/href=…>``), a comment also ends at ``--!>``, ``<!-->`` is
an empty comment, ``<![…]>`` outside SVG/MathML is a bogus comment up to the next ``>``
(``<![endif]>`` included), a tag cut by the end of the document is dropped, the contents
of ``script``/``style``/``xmp``/``iframe``/``noembed``/``noframes`` are raw text and those
of ``title``/``textarea`` text with entities, and ``<![CDATA[…]]>`` is text inside SVG or
MathML. Outlook's conditional comments (``<!--[if mso]>…<![endif]-->``) hold markup that
Outlook renders: their contents are tokenized too (with the offsets of the outer
document), so links and phrases inside them are seen by every reader.

Why written here: every token keeps its source offsets, which the rewriter needs to
change one attribute and leave every other byte alone; ``html.parser`` (not WHATWG, and
quadratic on unclosed ``<a``, and raises on ``<![end if]>``), ``html5lib`` (unmaintained,
no offsets) and the compiled parsers (lexbor/selectolax, html5-parser: a tree, no token
offsets) do not give them. Checked again in session 4: selectolax/lexbor, html5-parser,
lxml and markupever build trees; html5ever's token sink reports a line number, not a
span; the Rust ``html5tokenizer`` crate has spans but no Python binding on PyPI. The
tokenizer is one pass: each state consumes input, every search starts where the previous
one ended, so its cost is linear in the document.

Speed: the tag, attribute and comment states are regular languages, so a well-formed tag
(``<name attr="v" …>``, ``</name>``) is consumed by one compiled pattern (``_FAST_TAG``)
written with possessive quantifiers, so that it reads exactly as the states do and never
backtracks into another reading; anything it does not match whole (a tag cut by the end,
an unclosed quoted value, comments, markup declarations, raw text…) goes through the
state machine below, which stays the reference (:func:`reference_tokenize`; a property
test checks that both give the same tokens with the same offsets). Tokens are small
named tuples (immutable, cheap to build), and the tokens of the last few documents are
cached (:func:`tokens`). The scan itself (visible text and the link scan) reads the
same input without building most tokens: :mod:`milter.text.html_view`, which also
says why a compiled tree parser was measured and not adopted (session 5).

Reading a tag's attributes costs about two thirds of the tokens (an ``Attr`` per
attribute, values decoded); a reader that needs only a few attribute names (the link
rewriter: ``href``, ``action``…) passes a :class:`Selection` to :func:`tokenize`, and a
tag's attribute list is read only when its text holds one of those names, then only
those attributes are kept (property-tested against the full reading).
"""

from __future__ import annotations

import html as _html
import re
import threading
from collections import OrderedDict
from collections.abc import Generator, Iterable, Iterator
from html.entities import html5 as _ENTITIES
from itertools import chain, islice
from typing import Literal, NamedTuple

__all__ = [
    "Attr",
    "Comment",
    "Selection",
    "Tag",
    "Text",
    "Token",
    "reference_tokenize",
    "tokenize",
    "tokens",
]

_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_SEPARATORS = re.compile(r"[\t\n\f\r /]*")
# One attribute, as the WHATWG states read it: a name (its first character may be "="),
# then optionally "=" and a double-quoted, single-quoted or unquoted value. (Possessive:
# no shorter reading of a name, a space run or a value could let the rest match where the
# longest does not, so the matches are those of the plain repeats, for less work.)
_ATTRIBUTE = re.compile(
    r"(?P<name>[^\t\n\f\r />][^\t\n\f\r />=]*+)"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?:\"(?P<dq>[^\"]*+)\"|'(?P<sq>[^']*+)'|(?P<bare>[^\t\n\f\r >]*+)))?"
)
# A whole well-formed start or end tag, read as the tag states read it: possessive
# quantifiers and atomic groups, so the pattern never backtracks into a reading the
# states would not make. It refuses what the states treat specially (the end of the
# document inside the tag, an unquoted value starting with a quote: both drop the tag),
# which then goes through the state machine (``_Tokenizer._tag``).
_FAST_ATTRIBUTE = (
    r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?:\"[^\"]*+\"|'[^']*+'|(?![\"'])[^\t\n\f\r >]*+)"
    r"|(?![\t\n\f\r ]*=))"
)
# Its pieces (the name, the attribute list, the tail before ">") are kept apart for the
# HTML view, which reads runs of tags with patterns built from the same pieces.
_FAST_NAME = r"[A-Za-z][^\t\n\f\r />]*+"
_FAST_ATTRIBUTES = r"(?:[\t\n\f\r /]*+(?>" + _FAST_ATTRIBUTE + r"))*+"
_FAST_TAIL = r"[\t\n\f\r /]*+"
_FAST_TAG = re.compile(
    r"<(/?)(" + _FAST_NAME + r")(" + _FAST_ATTRIBUTES + r")(" + _FAST_TAIL + r")>"
)
# A start or end tag that ``_FAST_TAG`` does not read whole is a tag the state machine
# reads to the end of the document: the pattern refuses a tag only for running into the
# end, or for an unclosed quoted value (which runs to the end). So the fast path drops it
# and everything after it without the state machine: a hostile part of one never-closed
# tag costs one compiled scan, not one Python step per attribute (property-tested against
# the state machine alone, tests/text/test_html_fast_path.py).
_TAG_OPEN = re.compile(r"</?[A-Za-z]")
# A character reference in an attribute value that may read as something else than its
# own text (:func:`_decode_attr_ref` decides): numeric, a name and ";", or a legacy name
# (one of those that need no ";") ending the run of letters and digits and not followed
# by "=". Any other "&name" stays literal, so it is not even handed to the callback
# (``?a=1&utm_source=…`` in every tracked link); property-tested against the broad
# pattern ``&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)``.
_LEGACY_NAMES = sorted(
    (name for name in _ENTITIES if not name.endswith(";")), key=len, reverse=True
)


def _name_tree(names: Iterable[str], after: str) -> str:
    """A pattern for one of ``names`` followed by ``after`` (a lookahead), written as a
    tree of their letters: sre reads each letter once instead of trying every name in
    turn. It matches what ``(?:name1|name2|…)after`` matches with the names longest first
    when at most one name can be followed by ``after`` where they start (a lookahead that
    refuses every character a name may continue with: then the tree's match is that one)."""
    rests: dict[str, list[str]] = {}
    ends = False
    for name in names:
        if name:
            rests.setdefault(name[0], []).append(name[1:])
        else:
            ends = True
    branches = [after] if ends else []
    for letter, tails in sorted(rests.items()):
        sub = _name_tree(tails, after)
        branches.append(re.escape(letter) + (f"(?:{sub})" if "|" in sub else sub))
    return "|".join(branches)


# The legacy names as a letter tree: a bare "&" (``&utm_source=``) was ~5,100 instructions
# when sre tried the ~100 names one by one. Every legacy name is letters and digits, and
# the lookahead refuses those, so at most one name can end a match at a given "&": the
# flat alternation longest first and the tree match the same (tests/text/
# test_html_attr_ref_tree.py, against the flat pattern). "*+" for "*": a run of letters
# and digits gives back no ";", so the same matches.
_ATTR_REF = re.compile(
    r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*+;|(?:"
    + _name_tree(_LEGACY_NAMES, r"(?![A-Za-z0-9=])")
    + r"))"
)
_RAWTEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes"})
_RCDATA = frozenset({"title", "textarea"})
_FOREIGN = frozenset({"svg", "math"})
# Start tags after which the state changes (raw text, foreign content, plaintext).
_STATEFUL = _RAWTEXT | _RCDATA | _FOREIGN | {"plaintext"}
_CLOSING = {name: re.compile(r"</" + name + r"[\t\n\f\r />]", re.I) for name in _RAWTEXT | _RCDATA}
_CONDITIONAL = re.compile(r"\[if[^\]]*\]>", re.I)
_CONDITIONAL_END = re.compile(r"<!\[endif\]\s*\Z", re.I)
_MAX_CONDITIONAL_DEPTH = 2


class Attr(NamedTuple):
    """One attribute: lower-case name, value with character references decoded, and the
    source span of the whole attribute (``start``/``end``) and of its raw value."""

    name: str
    value: str
    start: int
    end: int
    value_start: int
    value_end: int


class Tag(NamedTuple):
    """A start or end tag; duplicate attributes after the first are dropped, as browsers do."""

    name: str
    attrs: tuple[Attr, ...]
    start: int
    end: int
    end_tag: bool = False
    self_closing: bool = False

    def get(self, name: str) -> str | None:
        """Value of attribute ``name`` (lower-case), None when absent."""
        for attr in self.attrs:
            if attr.name == name:
                return attr.value
        return None


class Text(NamedTuple):
    """Character data. ``kind`` is "data" (visible, entities apply), "rcdata" (``title``/
    ``textarea``: entities apply) or "rawtext" (``script``/``style``…: no markup, no entities).
    ``parent`` names the element of rcdata/rawtext text."""

    raw: str
    start: int
    end: int
    kind: Literal["data", "rcdata", "rawtext", "cdata"] = "data"
    parent: str = ""

    @property
    def data(self) -> str:
        """The text as a reader gets it (character references decoded)."""
        if self.kind in ("rawtext", "cdata") or "&" not in self.raw:
            return self.raw
        return _html.unescape(self.raw)


class Comment(NamedTuple):
    """A comment, a bogus comment (``<!…>``, ``<?…>``, ``</1…>``) or a doctype."""

    data: str
    start: int
    end: int
    conditional: bool = False  # an Outlook ``[if …]>`` comment whose markup was tokenized


Token = Tag | Text | Comment


class Selection:
    """The attributes a reader needs (:func:`tokenize`'s ``only``): a tag gets the
    attributes named in ``keys`` or ``also`` (lower-case names, the first of duplicate
    names, the same ``Attr`` as a full reading) when it has one named in ``keys``, and
    no attributes otherwise. A tag's attribute list is not read at all when its text,
    lower-cased, holds none of ``keys`` (a name's lower case is a piece of the
    lower-cased text it is written in, so no tag is skipped that has one). With
    ``bare_tags`` False, the tags left with no attributes are not yielded at all (a
    reader that acts on tags only through those attributes: every other token is the
    same, text tokens split where those tags stood)."""

    __slots__ = ("bare_tags", "keys", "names", "triggers")

    def __init__(
        self, keys: Iterable[str], also: Iterable[str] = (), *, bare_tags: bool = True
    ) -> None:
        self.keys = frozenset(keys)
        self.names = self.keys | frozenset(also)
        self.bare_tags = bare_tags
        # keys that hold no other key ("href" covers "xlink:href"): fewer searches
        self.triggers = tuple(
            sorted(k for k in self.keys if not any(o != k and o in k for o in self.keys))
        )

    def pick(self, attrs: Iterable[Attr]) -> tuple[Attr, ...]:
        """What this selection keeps of a tag's full attribute list (the definition)."""
        kept = tuple(attr for attr in attrs if attr.name in self.names)
        return kept if any(attr.name in self.keys for attr in kept) else ()


# The hot paths build tokens with every field given through ``tuple.__new__``: the same
# named tuple, for half the cost of the generated ``__new__`` (one Python frame less).
_new = tuple.__new__


def _skip(pattern: re.Pattern[str], doc: str, pos: int) -> int:
    match = pattern.match(doc, pos)
    return match.end() if match else pos


def _attr_value(raw: str) -> str:
    """Character references in an attribute value, decoded as browsers do: a legacy named
    reference without ``;`` stays literal before ``=`` or an alphanumeric (``?a=1&copy=2``)."""
    # (a value with no reference, as every "&" of a tracked link's query, is its own
    # decoding: one search instead of sub's result building, ~600 instructions less)
    if "&" not in raw or _ATTR_REF.search(raw) is None:
        return raw
    return _ATTR_REF.sub(_decode_attr_ref, raw)


def _decode_attr_ref(match: re.Match[str]) -> str:
    ref, after = match.group(0), match.end()
    if ref.endswith(";") or ref[1] == "#":
        return _html.unescape(ref)
    if match.string[after : after + 1] == "=" or ref[1:] not in _ENTITIES:
        return ref
    return _html.unescape(ref)


class _Tokenizer:
    """The state machine; ``offset`` shifts spans when tokenizing a comment's contents.

    With ``fast`` (the default) well-formed tags are read by ``_FAST_TAG``; without it
    every tag goes through :meth:`_tag`, the reference the fast path is tested against.
    """

    def __init__(
        self, doc: str, offset: int, depth: int, fast: bool = True, only: Selection | None = None
    ) -> None:
        self.doc = doc
        self.size = len(doc)
        self.offset = offset
        self.depth = depth
        self.fast = fast
        self.only = only
        self.foreign = 0  # open svg/math elements (CDATA sections are allowed inside)

    def run(self) -> Iterator[Token]:
        doc, size, offset, pos, text_start = self.doc, self.size, self.offset, 0, 0
        find, fast = doc.find, _FAST_TAG.match if self.fast else None
        read_attrs = self._attrs if self.only is None else self._selected
        bare = self.only is None or self.only.bare_tags  # yield tags with no attributes
        while True:
            lt = find("<", pos)
            if lt < 0 or lt + 1 >= size:
                break
            found = fast(doc, lt) if fast is not None else None
            if found is not None:  # a whole well-formed tag: the common case, kept inline
                end = found.end()
                if text_start < lt:
                    yield _new(
                        Text, (doc[text_start:lt], offset + text_start, offset + lt, "data", "")
                    )
                pos = text_start = end
                slash, name, attrs, tail = found.groups()
                name = name.lower()
                tag = _new(
                    Tag,
                    (
                        name,
                        read_attrs(*found.span(3)) if attrs else (),
                        offset + lt,
                        offset + end,
                        bool(slash),
                        tail[-1:] == "/",
                    ),
                )
                if bare or tag.attrs:
                    yield tag
                if slash:
                    if self.foreign and name in _FOREIGN:
                        self.foreign -= 1
                elif self.foreign or name in _STATEFUL:
                    pos = text_start = yield from self._after_start_tag(tag, end)
                continue
            # A tag the fast path refuses runs to the end of the document (see _TAG_OPEN):
            # dropped, with all after it, without reading it attribute by attribute.
            read = (None, -1) if fast is not None and _TAG_OPEN.match(doc, lt) else self._markup(lt)
            if read is None:  # "<" followed by anything else is text
                pos = lt + 1
                continue
            token, end = read
            if end < 0:  # a tag cut by the end of the document is dropped
                if text_start < lt:
                    yield self._text(text_start, lt)
                return
            if text_start < lt:
                yield self._text(text_start, lt)
            pos = text_start = end
            if token is None:  # "</>": nothing at all
                continue
            if bare or type(token) is not Tag or token.attrs:
                yield token
            if type(token) is Tag:
                if not token.end_tag and (self.foreign or token.name in _STATEFUL):
                    pos = text_start = yield from self._after_start_tag(token, end)
            elif type(token) is Comment and token.conditional:
                yield from self._conditional(token, lt + 4)
        if text_start < size:
            yield self._text(text_start, size)

    def _markup(self, lt: int) -> tuple[Token | None, int] | None:
        """The token starting at ``lt`` by the state machine (end -1: cut by the end of
        the document), None when this ``<`` starts no markup."""
        nxt = self.doc[lt + 1]
        if nxt.isascii() and nxt.isalpha():
            return self._tag(lt, lt + 1, end_tag=False)
        if nxt == "/":
            return self._end_tag_open(lt)
        if nxt == "!":
            return self._markup_declaration(lt)
        if nxt == "?":
            return self._bogus(lt, lt + 1)
        return None

    def _conditional(self, token: Comment, data_start: int) -> Iterator[Token]:
        inner = self.conditional(token, data_start)
        if inner is not None:
            yield from inner.run()

    def conditional(self, token: Comment, data_start: int) -> _Tokenizer | None:
        """A tokenizer over the markup of Outlook conditional comment ``token`` (its data
        starting at ``data_start``), with this document's offsets."""
        match = _CONDITIONAL.match(token.data)
        if match is None:
            return None
        body = token.data[match.end() :]
        end_match = _CONDITIONAL_END.search(body)
        if end_match is not None:
            body = body[: end_match.start()]
        start = data_start + match.end()
        return _Tokenizer(body, self.offset + start, self.depth + 1, self.fast, self.only)

    def _text(self, start: int, end: int) -> Text:
        return _new(Text, (self.doc[start:end], self.offset + start, self.offset + end, "data", ""))

    def _after_start_tag(self, tag: Tag, pos: int) -> Generator[Token, None, int]:
        """Text content of raw-text / RCDATA elements; returns where data resumes."""
        name = tag.name
        if name in _FOREIGN and not tag.self_closing:
            self.foreign += 1
        if self.foreign:
            return pos
        if name == "plaintext":
            if pos < self.size:
                yield Text(self.doc[pos:], self.offset + pos, self.offset + self.size)
            return self.size
        closing = _CLOSING.get(name)
        if closing is None:
            return pos
        match = closing.search(self.doc, pos)
        end = match.start() if match else self.size
        if end > pos:
            kind: Literal["rcdata", "rawtext"] = "rcdata" if name in _RCDATA else "rawtext"
            yield Text(self.doc[pos:end], self.offset + pos, self.offset + end, kind, name)
        return end

    def _end_tag_open(self, lt: int) -> tuple[Token | None, int]:
        if lt + 2 >= self.size:
            return None, -1
        after = self.doc[lt + 2]
        if after.isascii() and after.isalpha():
            return self._tag(lt, lt + 2, end_tag=True)
        if after == ">":
            return None, lt + 3
        return self._bogus(lt, lt + 2)

    def _bogus(self, lt: int, data_start: int) -> tuple[Token | None, int]:
        gt = self.doc.find(">", data_start)
        end = self.size if gt < 0 else gt + 1
        data = self.doc[data_start : end - 1 if gt >= 0 else end]
        return Comment(data, self.offset + lt, self.offset + end), end

    def _markup_declaration(self, lt: int) -> tuple[Token | None, int]:
        doc = self.doc
        if doc.startswith("--", lt + 2):
            return self._comment(lt)
        if self.foreign and doc.startswith("[CDATA[", lt + 2):
            close = doc.find("]]>", lt + 9)
            end = self.size if close < 0 else close + 3
            raw = doc[lt + 9 : close if close >= 0 else self.size]
            return Text(raw, self.offset + lt, self.offset + end, "cdata"), end
        return self._bogus(lt, lt + 2)

    def _comment(self, lt: int) -> tuple[Token | None, int]:
        doc, start = self.doc, lt + 4
        if doc.startswith(">", start) or doc.startswith("->", start):  # <!--> and <!--->
            end = doc.find(">", start) + 1
            return Comment("", self.offset + lt, self.offset + end), end
        close = doc.find("-->", start)
        bang = doc.find("--!>", start, close + 4 if close >= 0 else self.size)
        if bang >= 0 and (close < 0 or bang < close):
            close = bang
        if close < 0:
            data, end = doc[start:], self.size
        else:
            data = doc[start:close]
            end = close + (3 if doc.startswith("-->", close) else 4)
        conditional = self.depth < _MAX_CONDITIONAL_DEPTH and bool(_CONDITIONAL.match(data))
        comment = Comment(data, self.offset + lt, self.offset + end, conditional)
        return comment, end

    def _attrs(self, start: int, end: int) -> tuple[Attr, ...]:
        """The attributes of a tag ``_FAST_TAG`` matched whole, from the span of its
        attribute list: inside it the attributes sit between separators, so a search
        finds exactly those the tag states read, one after the other."""
        kept: list[Attr] = []
        seen: set[str] = set()
        for found in _ATTRIBUTE.finditer(self.doc, start, end):
            name = found.group("name").lower()
            if name not in seen:
                seen.add(name)
                kept.append(self._attr(found, name))
        return tuple(kept)

    def _selected(self, start: int, end: int) -> tuple[Attr, ...]:
        """:meth:`_attrs` as ``self.only`` picks them (:meth:`Selection.pick`), reading
        only the tags whose text may hold a key, building only the attributes kept."""
        only = self.only
        assert only is not None
        doc = self.doc
        text = doc[start:end].lower()
        for trigger in only.triggers:
            if trigger in text:
                break
        else:
            return ()
        names, keys = only.names, only.keys
        kept: list[Attr] = []
        seen: set[str] = set()
        keyed = False
        for found in _ATTRIBUTE.finditer(doc, start, end):
            name = found.group("name").lower()
            if name in names and name not in seen:
                seen.add(name)
                kept.append(self._attr(found, name))
                keyed = keyed or name in keys
        return tuple(kept) if keyed else ()

    def _tag(self, lt: int, name_start: int, *, end_tag: bool) -> tuple[Token | None, int]:
        doc = self.doc
        match = _TAG_NAME.match(doc, name_start)
        assert match is not None  # the pattern matches the empty string
        name = match.group().lower()
        pos = match.end()
        attrs: list[Attr] = []
        seen: set[str] = set()
        while True:
            gap = pos
            pos = _skip(_SEPARATORS, doc, pos)
            if pos >= self.size:
                return None, -1
            if doc[pos] == ">":
                self_closing = pos > gap and doc[pos - 1] == "/"
                start, end = self.offset + lt, self.offset + pos + 1
                picked = tuple(attrs) if self.only is None else self.only.pick(attrs)
                tag = Tag(name, picked, start, end, end_tag, self_closing)
                if end_tag and name in _FOREIGN and self.foreign:
                    self.foreign -= 1
                return tag, pos + 1
            found = _ATTRIBUTE.match(doc, pos)
            assert found is not None  # doc[pos] is not a separator nor ">"
            unquoted = found.group("bare")
            if unquoted is not None and unquoted[:1] in ("'", '"'):
                return None, -1  # an unclosed quoted value runs to the end: dropped
            attr_name = found.group("name").lower()
            if attr_name not in seen:
                seen.add(attr_name)
                attrs.append(self._attr(found, attr_name))
            pos = found.end()

    def _attr(self, found: re.Match[str], name: str) -> Attr:
        off = self.offset
        group = found.lastgroup  # "dq", "sq" or "bare" when a value follows, else "name"
        if group is not None and group != "name":
            start, end = found.span(group)
            value = _attr_value(found.group(group))
            return _new(
                Attr, (name, value, off + found.start(), off + found.end(), off + start, off + end)
            )
        end = found.end("name")
        return Attr(name, "", off + found.start(), off + end, -1, -1)


# Documents up to this size are tokenized once and their tokens kept (a few at a time)
# for the next reader of the same HTML part; larger ones, and documents with more tokens
# than kept, are streamed every time: a hostile part never holds all its tokens in memory,
# and the cache holds at most _CACHED_DOCS * _CACHED_TOKENS tokens.
_CACHED_CHARS = 256 * 1024
_CACHED_TOKENS = 16_384
_CACHED_DOCS = 4
_cache: OrderedDict[str, tuple[Token, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def tokens(doc: str) -> tuple[Token, ...] | Iterator[Token]:
    """The tokens of ``doc``: a tuple shared with earlier callers when ``doc`` is small
    enough to keep (the last few documents are cached), else a fresh stream."""
    if len(doc) > _CACHED_CHARS:
        return _Tokenizer(doc, 0, 0).run()
    with _cache_lock:
        kept = _cache.get(doc)
        if kept is not None:
            _cache.move_to_end(doc)
            return kept
    stream = _Tokenizer(doc, 0, 0).run()
    built = tuple(islice(stream, _CACHED_TOKENS + 1))
    if len(built) > _CACHED_TOKENS:  # too many to keep: the rest is streamed
        return chain(built, stream)
    with _cache_lock:
        _cache[doc] = built
        while len(_cache) > _CACHED_DOCS:
            _cache.popitem(last=False)
    return built


def tokenize(doc: str, only: Selection | None = None) -> Iterator[Token]:
    """Tokens of ``doc`` in source order, each with its ``start``/``end`` offsets in ``doc``.

    Tokens inside an Outlook conditional comment follow that comment's token. With
    ``only``, tags carry only the attributes it selects (streamed: such tokens are not
    the shared ones, nor kept); every other field of every token is the same.
    """
    if only is not None:
        return _Tokenizer(doc, 0, 0, only=only).run()
    return iter(tokens(doc))


def reference_tokenize(doc: str) -> Iterator[Token]:
    """The same tokens as :func:`tokenize`, read by the state machine alone (no compiled
    fast path, no cache): what the fast path is tested against."""
    return _Tokenizer(doc, 0, 0, fast=False).run()
