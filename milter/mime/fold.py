"""Fold text for matching: accents removed, case folded, confusable letters mapped to
Latin, punctuation turned into word breaks. Brand names, phrases and display names are
all compared in this folded form."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=4096)
def _latin_lookalike(char: str) -> str:
    """ASCII letter a non-ASCII character is confusable with (Unicode confusables data), or
    the character itself."""
    found = confusables.is_confusable(char, preferred_aliases=["latin"], greedy=False)
    if not found:
        return char
    for glyph in found[0]["homoglyphs"]:
        candidate = glyph["c"]
        if candidate.isascii() and candidate.isalnum():
            return str(candidate).lower()
    return char


def fold(text: str) -> str:
    """Lower-case ASCII-only form of ``text`` for matching ("Αmazοn" → "amazon")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    if stripped.isascii():
        return stripped
    return "".join(c if c.isascii() or not c.isalpha() else _latin_lookalike(c) for c in stripped)


def words(text: str) -> list[str]:
    """Folded words of ``text`` (letters and digits only)."""
    return _WORD.findall(fold(text))


def phrase_key(text: str) -> str:
    """The folded word sequence of a phrase, space-separated and padded for substring search."""
    return " " + " ".join(words(text)) + " "


def has_mixed_scripts(text: str) -> bool:
    """True when letters of text come from more than one script (Latin with Greek, …)."""
    scripts = {unicodedata.name(c, "").split(" ")[0] for c in text if c.isalpha()}
    scripts.discard("")
    return len(scripts) > 1
