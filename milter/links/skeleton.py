"""Visual skeletons of domain labels and small edit-distance helpers.

The skeleton follows UTS #39 using the Unicode confusables data bundled with the
``confusable_homoglyphs`` package (no hand-typed Unicode table): every character with
an ASCII prototype is replaced by it (Cyrillic ``а`` → ``a``, ``ı`` → ``i``, ``m`` → ``rn``,
``1``/``I``/``|`` → ``l``, ``0`` → ``o``), accents are dropped (NFD, marks removed), and a few
ASCII look-alike classes that UTS #39 leaves distinct but that are classic in domain
spoofing are merged: ``i``/``l``, ``u``/``v``, ``rn``/``nn``/``rr`` → ``m`` (UTS #39
maps ``m`` to ``rn``; the skeleton keeps the single letter so that one-letter typos of
an ``m`` stay at distance 1) and ``cl`` → ``d``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import unicodedata

_LRM = "\u200e"
# Multi-letter ASCII look-alikes: "m" is kept as the prototype of rn / nn / rr.
_ASCII_SEQUENCES = (("rn", "m"), ("nn", "m"), ("rr", "m"), ("cl", "d"))
_KEYBOARD_ROWS = (
    "1234567890-",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
)
_VOWELS = frozenset("aeiouy")


def _target(entry: dict[str, str]) -> str | None:
    value = entry["c"].replace(_LRM, "").lower()
    if value and value.isascii() and all(ch.isalnum() or ch == "-" for ch in value):
        return value
    return None


@functools.cache
def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """(ASCII table, full table) built from the bundled confusables data."""
    path = importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data: dict[str, list[dict[str, str]]] = json.loads(path.read_text(encoding="utf-8"))
    ascii_table: dict[int, str] = {}
    full: dict[int, str] = {}
    for key, entries in data.items():
        char = key.replace(_LRM, "")
        if len(char) != 1:
            continue
        if char.isascii():
            # ASCII sources map only when UTS #39 gives them a single prototype ("1" → "l").
            target = _target(entries[0]) if len(entries) == 1 else None
            if target is not None and target != char.lower() and len(target) == 1:
                ascii_table[ord(char)] = target
            continue
        for entry in entries:
            target = _target(entry)
            if target is not None:
                full[ord(char)] = target
                break
    ascii_table[ord("i")] = "l"
    ascii_table[ord("v")] = "u"
    full.update(ascii_table)
    return ascii_table, full


@functools.cache
def _marks() -> dict[int, None]:
    """Translation table deleting combining marks (built once, planes 0 and 1)."""
    return {cp: None for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))}


def _strip_marks(text: str) -> str:
    return unicodedata.normalize("NFD", text).translate(_marks())


def prepare() -> None:
    """Build the static tables now (they are otherwise built on first use)."""
    _tables()
    _marks()
    _keyboard_neighbours()


def strip_accents(text: str) -> str:
    """Drop combining marks (``é`` → ``e``); ASCII input is returned as is."""
    return text if text.isascii() else _strip_marks(text)


def has_sequences(text: str) -> bool:
    """True when :func:`skeleton` with ``sequences=True`` would merge letter pairs."""
    return any(seq in text for seq, _ in _ASCII_SEQUENCES)


def skeleton(text: str, *, sequences: bool = True) -> str:
    """Visual skeleton of a lower-case label or host (dots and hyphens kept).

    ``sequences=False`` keeps letter pairs (``rn``, ``cl``...) unmerged: the "light"
    skeleton, used as a second view because merging changes lengths.
    """
    ascii_table, full = _tables()
    if text.isascii():
        out = text.translate(ascii_table)
    else:
        out = _strip_marks(text.translate(full)).lower().translate(full)
    if not sequences:
        return out
    for seq, repl in _ASCII_SEQUENCES:
        if seq in out:
            out = out.replace(seq, repl)
    return out


def squash(text: str) -> str:
    """Remove dots and hyphens: ``impots.gouv-fr`` → ``impotsgouvfr``."""
    return text.replace(".", "").replace("-", "")


def _strip_common(a: str, b: str) -> tuple[str, str]:
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Levenshtein + adjacent transposition).

    Returns ``limit + 1`` as soon as the distance is known to exceed ``limit``.
    """
    a, b = _strip_common(a, b)
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if not a or not b:
        return max(len(a), len(b))
    if len(a) + len(b) <= 2:
        return 1  # one substitution
    if len(a) == len(b) == 2 and a == b[::-1]:
        return 1  # adjacent transposition
    if limit == 1:
        return 2
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@functools.cache
def _keyboard_neighbours() -> dict[str, frozenset[str]]:
    near: dict[str, set[str]] = {}
    for row_index, row in enumerate(_KEYBOARD_ROWS):
        for col, ch in enumerate(row):
            group = near.setdefault(ch, set())
            group.update(row[max(col - 1, 0) : col + 2])
            for other in _KEYBOARD_ROWS[max(row_index - 1, 0) : row_index + 2]:
                group.update(other[max(col - 1, 0) : col + 2])
    return {ch: frozenset(group - {ch}) for ch, group in near.items()}


def describe_edit(candidate: str, official: str) -> str:
    """Name the single edit turning ``official`` into ``candidate`` (dnstwist vocabulary)."""
    cand, off = _strip_common(candidate, official)
    if len(cand) == 1 and not off:
        idx = candidate.find(cand)
        neighbours = candidate[max(idx - 1, 0) : idx] + candidate[idx + 1 : idx + 2]
        return "repetition" if cand in neighbours else "insertion"
    if len(off) == 1 and not cand:
        return "hyphen omission" if off == "-" else "omission"
    if len(cand) == 2 and cand == off[::-1]:
        return "transposition"
    if len(cand) == 1 and len(off) == 1:
        return _replacement_kind(cand, off)
    if squash(candidate) == squash(official):
        return "hyphenation"
    return "edit"


def _replacement_kind(new: str, old: str) -> str:
    if new in _keyboard_neighbours().get(old, frozenset()):
        return "keyboard replacement"
    if new in _VOWELS and old in _VOWELS:
        return "vowel-swap"
    diff = ord(new) ^ ord(old)
    if diff and not diff & (diff - 1):
        return "bitsquatting"
    if new in "-." or old in "-.":
        return "hyphenation"
    return "replacement"
