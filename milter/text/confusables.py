"""One visual skeleton for display names and domains, and the folded form used for matching.

Both come from the Unicode confusables data (UTS #39) as the ``confusable_homoglyphs``
package exposes it through its public ``is_confusable`` function (no reading of its data
files): every character with an ASCII prototype is replaced by it (Cyrillic ``а`` → ``a``,
``ı`` → ``i``, ``1``/``I``/``|`` → ``l``, ``0`` → ``o``) and accents are dropped.

:func:`skeleton` adds the ASCII look-alike classes that UTS #39 leaves distinct but that are
classic in spoofing, for names and hosts alike: ``i``/``l``, ``u``/``v``,
``rn``/``nn``/``rr`` → ``m`` (the skeleton keeps the single letter so that one-letter
typos of an ``m`` stay at distance 1) and ``cl`` → ``d``. So the display name "Arneli" and
the domain ``arneli.fr`` both read as ``ameli``.

:func:`fold` is the lighter form phrases and brand names are compared in: accents
removed, case folded, confusable letters mapped to Latin, nothing merged.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from dataclasses import dataclass

from confusable_homoglyphs import confusables as _uts39

_LRM = "\u200e"
# Multi-letter ASCII look-alikes: "m" is kept as the prototype of rn / nn / rr.
_ASCII_SEQUENCES = (("rn", "m"), ("nn", "m"), ("rr", "m"), ("cl", "d"))
_WORD = re.compile(r"[a-z0-9]+")


def _target(value: str) -> str | None:
    value = value.replace(_LRM, "").lower()
    if value and value.isascii() and all(ch.isalnum() or ch == "-" for ch in value):
        return value
    return None


@functools.cache
def _homoglyphs(char: str) -> tuple[str, ...]:
    """Prototypes UTS #39 lists for ``char`` (public API, one character at a time)."""
    found = _uts39.is_confusable(char, greedy=False, preferred_aliases=[])
    if not found:
        return ()
    return tuple(str(glyph["c"]) for glyph in found[0]["homoglyphs"])


@functools.cache
def prototype(char: str) -> str:
    """ASCII prototype of one non-ASCII character (``а`` → ``a``), or the character itself."""
    for glyph in _homoglyphs(char):
        target = _target(glyph)
        if target is not None:
            return target
    return char


class _FullTable(dict[int, str]):
    """``str.translate`` table filled on demand: any character → its ASCII prototype."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = _ASCII_TABLE.get(code, char) if code < 0x80 else prototype(char)
        self[code] = value
        return value


@functools.cache
def _ascii_table() -> dict[int, str]:
    """ASCII characters UTS #39 gives one single-letter prototype (``1`` → ``l``), plus
    the spoofing classes ``i`` → ``l`` and ``v`` → ``u``."""
    table: dict[int, str] = {}
    for code in range(0x21, 0x7F):
        glyphs = _homoglyphs(chr(code))
        target = _target(glyphs[0]) if len(glyphs) == 1 else None
        if target is not None and target != chr(code).lower() and len(target) == 1:
            table[code] = target
    table[ord("i")] = "l"
    table[ord("v")] = "u"
    return table


_ASCII_TABLE: dict[int, str] = {}
_FULL = _FullTable()


@functools.cache
def _marks() -> dict[int, None]:
    """Translation table deleting combining marks (built once, planes 0 and 1)."""
    return {cp: None for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))}


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _strip_marks(text: str) -> str:
    """Decompose, then delete combining marks. Only the non-ASCII runs go through the
    translate table: French text is mostly ASCII, and a translate over the whole text
    costs a dict lookup per character (several times slower on a 70 KB body)."""
    decomposed = unicodedata.normalize("NFD", text)
    if decomposed.isascii():
        return decomposed
    table = _marks()
    return _NON_ASCII_RUN.sub(lambda run: run.group().translate(table), decomposed)


class _FoldTable(dict[int, str]):
    """``str.translate`` table for :func:`fold`, filled on demand: a non-ASCII letter → its
    ASCII prototype, anything else → itself."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = prototype(char) if code >= 0x80 and char.isalpha() else char
        self[code] = value
        return value


_FOLD = _FoldTable()


class _FoldCharTable(dict[int, str]):
    """``str.translate`` table, filled on demand: one non-ASCII character → its whole fold
    (compatibility decomposition, marks dropped, case folded, letters to their ASCII
    prototypes). Every step of :func:`fold` maps characters independently (the canonical
    reordering of NFKD only moves marks, which are dropped), so folding a text character by
    character gives the fold of the whole; a property test holds this against the plain
    definition."""

    def __missing__(self, code: int) -> str:
        stripped = _strip_marks(unicodedata.normalize("NFKD", chr(code))).casefold()
        value = stripped if stripped.isascii() else stripped.translate(_FOLD)
        self[code] = value
        return value


_FOLD_CHAR = _FoldCharTable()
# Byte table for phrase keys: ASCII letters and digits kept, every other byte (including
# each byte of a UTF-8 encoded non-ASCII character) a space.
_WORD_BYTES = bytes(
    c if chr(c).isascii() and chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else 0x20
    for c in range(256)
)
_NON_ASCII_SPLIT = re.compile(r"([^\x00-\x7f]+)")  # captured: split keeps the runs


def prepare() -> None:
    """Build the static tables now (they are otherwise built on first use)."""
    if not _ASCII_TABLE:
        _ASCII_TABLE.update(_ascii_table())
    _marks()


def strip_accents(text: str) -> str:
    """Drop combining marks (``é`` → ``e``); ASCII input is returned as is."""
    return text if text.isascii() else _strip_marks(text)


def has_sequences(text: str) -> bool:
    """True when :func:`skeleton` with ``sequences=True`` would merge letter pairs."""
    return any(seq in text for seq, _ in _ASCII_SEQUENCES)


def skeleton(text: str, *, sequences: bool = True) -> str:
    """Visual skeleton of a display name, label or host (case folded; dots, hyphens and
    spaces kept): ``skeleton("Arneli") == skeleton("ameli") == "amell"``.

    ``sequences=False`` keeps letter pairs (``rn``, ``cl``...) unmerged: the "light"
    skeleton, used as a second view because merging changes lengths.
    """
    prepare()
    if text.isascii():
        out = text.lower().translate(_ASCII_TABLE)
    else:
        text = unicodedata.normalize("NFKC", text)  # full-width and compatibility forms
        out = _strip_marks(text.translate(_FULL)).lower().translate(_FULL)
    if not sequences:
        return out
    for seq, repl in _ASCII_SEQUENCES:
        if seq in out:
            out = out.replace(seq, repl)
    return out


def fold(text: str) -> str:
    """Lower-case ASCII-only form of ``text`` for matching ("Αmazοn" → "amazon").

    Only the non-ASCII runs go through the per-character table: French text is mostly
    ASCII, and normalising and translating a whole 40 KB body cost ~6 ms a message."""
    if text.isascii():
        return text.casefold()
    pieces = _NON_ASCII_SPLIT.split(text)
    pieces[0::2] = [ascii_run.lower() for ascii_run in pieces[0::2]]
    pieces[1::2] = [run.translate(_FOLD_CHAR) for run in pieces[1::2]]
    return "".join(pieces)


def words(text: str) -> list[str]:
    """Folded words of ``text`` (letters and digits only)."""
    return _WORD.findall(fold(text))


def _fold_run_for_key(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a run of characters the codec cannot write → its fold, in
    ASCII letters, digits and spaces (what stays non-ASCII is no letter or digit: a space
    stands for it)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    folded = error.object[error.start : error.end].translate(_FOLD_CHAR)
    # Only letters, digits and spaces come out: a "?" for an emoji, "..." for "…" or "!"
    # for "！" would otherwise end a sentence in phrase_key_lines where the raw text has none.
    word_bytes = folded.encode("ascii", "replace").translate(_latin1_tables().words)
    return word_bytes.decode("ascii"), error.end


_KEY_ERRORS = "tocsin-phrase-key"
codecs.register_error(_KEY_ERRORS, _fold_run_for_key)


@dataclass(frozen=True, slots=True)
class _Latin1Tables:
    """Byte tables folding Latin-1 text to phrase-key bytes in one ``bytes.translate``."""

    words: bytes  # byte → its fold if a letter or digit (A → a, é → e, ² → 2), else space
    multi: tuple[tuple[bytes, bytes], ...]  # Latin-1 bytes folding to several (ß → ss)


@functools.cache
def _latin1_tables() -> _Latin1Tables:
    words = bytearray(_WORD_BYTES)
    multi = []
    for code in range(0x80, 0x100):
        folded = fold(chr(code)).encode("ascii", "replace").translate(_WORD_BYTES)
        if len(folded) == 1:
            words[code] = folded[0]
        else:
            multi.append((bytes([code]), folded))
    for code in range(ord("A"), ord("Z") + 1):
        words[code] = code + 0x20
    return _Latin1Tables(bytes(words), tuple(multi))


@functools.cache
def _lines_table(ends: str) -> bytes:
    """The words table, but each of ``ends`` (Latin-1 characters) → LINE_MARK."""
    table = bytearray(_latin1_tables().words)
    for char in ends:
        table[ord(char)] = 0x01
    return bytes(table)


def _key_bytes(text: str, table: bytes | None = None) -> bytes:
    """``text`` folded to lower-case ASCII letters and digits, anything else a space (or
    what ``table`` says: a line end LINE_MARK). Latin-1 characters (all of French) are folded by
    a byte table; only runs beyond Latin-1 (’ — € œ …) reach the codec error handler,
    which the encoder calls once per run. All of it runs in C but the handler: a regex or
    a per-character translate over a 40 KB body cost 1–6 ms."""
    tables = _latin1_tables()
    raw = text.encode("latin-1", _KEY_ERRORS)
    for byte, replacement in tables.multi:
        if byte in raw:
            raw = raw.replace(byte, replacement)
    return raw.translate(tables.words if table is None else table)


def phrase_key_uncached(text: str) -> str:
    """:func:`phrase_key` without its cache, for one-off texts (sentences) that would
    otherwise push a body's key out of it."""
    return " " + b" ".join(_key_bytes(text).split()).decode("ascii") + " "


LINE_MARK = "\x01"
"""Separates the lines' keys in :func:`phrase_key_lines` (no letter, no digit, no space)."""


def phrase_key_lines(text: str, ends: str = "\n") -> str:
    """The phrase keys of every line of ``text`` in one string, in one pass: each line's
    folded words space-separated, lines separated by ``" \x01 "``, the whole padded with
    spaces. A key found in it lies within one line (:func:`line_key_at` gives that line's
    key), as if each line's :func:`phrase_key` had been searched. ``ends``: the (Latin-1)
    characters that end a line, each one (a run of them leaves empty lines)."""
    folded = _key_bytes(text, _lines_table(ends)).replace(b"\x01", b" \x01 ")
    return " " + b" ".join(folded.split()).decode("ascii") + " "


def phrase_key_line_bytes(text: str, ends: str = "\n") -> bytes:
    """:func:`phrase_key_lines` before its spaces are collapsed: ``text`` folded byte for
    byte to ASCII letters, digits and spaces, each of ``ends`` a LINE_MARK byte. Its words
    are the lines' words (runs of letters and digits); it costs no Python object per word,
    where the joined form makes one (a 40 KB body: ~0.1 against ~1.4 M instructions)."""
    return _key_bytes(text, _lines_table(ends))


def line_key_at(lines: str, index: int) -> str:
    """The phrase key of the line of :func:`phrase_key_lines`'s ``lines`` holding ``index``."""
    begin = lines.rfind(LINE_MARK, 0, index) + 1
    end = lines.find(LINE_MARK, index)
    return " " + lines[begin : end if end >= 0 else len(lines)].strip(" ") + " "


def phrase_key(text: str) -> str:
    """The folded word sequence of a phrase, space-separated and padded for substring search
    (``" ".join(words(text))`` between two spaces).

    Cached: every phrase, claim, wording and canvassing check asks for the key of the same
    body text, so one scan folds each text once (a small cache: keys hold message text)."""
    key, words = _folded(text)
    if key not in _WORDS_OF_KEY:
        if len(_WORDS_OF_KEY) >= _KEPT_KEYS:
            del _WORDS_OF_KEY[next(iter(_WORDS_OF_KEY))]  # the oldest
        _WORDS_OF_KEY[key] = words
    return key


_KEPT_KEYS = 16
_WORDS_OF_KEY: dict[str, frozenset[bytes]] = {}
"""The word sets of the last keys :func:`phrase_key` made, for :func:`key_words`."""


@functools.lru_cache(maxsize=_KEPT_KEYS)
def _folded(text: str) -> tuple[str, frozenset[bytes]]:
    """The phrase key of ``text`` and its words: one split gives both (a body's words
    split a second time from its key cost as much again: ~0.2 ms for a 50 KB body)."""
    words = _key_bytes(text).split()
    return " " + b" ".join(words).decode("ascii") + " ", frozenset(words)


def phrase_key_words(key: str) -> frozenset[bytes] | None:
    """The words of ``key`` when :func:`phrase_key` made it (and still holds it), else
    None: then ``key`` is known to be a padded, single-spaced run of those words, so a
    one-word key ``" w "`` occurs in it exactly when ``w`` is one of them."""
    return _WORDS_OF_KEY.get(key)


def key_words(key: str) -> frozenset[bytes]:
    """The words of a phrase key (or of any space-separated key), as a set of UTF-8
    bytes: made with the key when :func:`phrase_key` made it, else now."""
    found = _WORDS_OF_KEY.get(key)
    if found is not None:
        return found
    return frozenset(word.encode() for word in key.split())


def has_mixed_scripts(text: str) -> bool:
    """True when letters of text come from more than one script (Latin with Greek, …)."""
    if text.isascii():
        return False  # every ASCII letter is LATIN
    scripts = {unicodedata.name(c, "").split(" ")[0] for c in text if c.isalpha()}
    scripts.discard("")
    return len(scripts) > 1
