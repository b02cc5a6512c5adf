"""Phrases in context: a request counts only where it is made, not where it is denied.

Real brand mail says "nous ne vous demanderons jamais vos coordonnées bancaires" and
"méfiez-vous des messages qui vous demandent votre mot de passe". Such sentences name a
request the brand never makes in order to deny it or warn about it: they must not count
as the request itself. A phrase counts when at least one sentence holding it is neither
negated (a negation governing a verb of asking or giving) nor a warning.

Matching is done on folded words (:func:`milter.text.confusables.phrase_key`), so accents, case
and punctuation do not matter ("n'envoyez" is "n envoyez").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from milter.text.confusables import (
    LINE_MARK,
    line_key_at,
    phrase_key_line_bytes,
    phrase_key_lines,
    phrase_key_uncached,
)

# Sentence ends in the raw text; dots inside names (ameli.fr) split harmlessly.
_SENTENCE_END = re.compile(r"[.!?;\n\r•|]+")
_LATIN1_ENDS = ".!?;\n\r|"  # the same, for phrase_key_lines's byte table ("•" is not Latin-1)
_BULLET = "•"

# Verbs of asking and giving (folded stems), French then English.
_VERB = (
    r"(?:demand|redemand|communiqu|transmet|donn|envoi|envoy|partag|divulg|reclam|sollicit"
    r"|fourni|saisi|indiqu|repond|cliqu|ask|share|give|send|provid|request|disclos|enter|reply|click)\w*"
)
_NEGATED = re.compile(
    # ne … <verb> … pas/jamais/plus/aucun: "nous ne vous demanderons jamais", "n'envoyez pas"
    rf" (?:ne|n) (?:\w+ ){{0,3}}?{_VERB} (?:\w+ ){{0,3}}?(?:pas|jamais|plus|aucun\w*|rien) "
    # jamais … <verb>: "jamais nous ne demandons", "ne jamais communiquer"
    rf"| jamais (?:\w+ ){{0,3}}?{_VERB} "
    # never / not … <verb>: "we will never ask", "do not share", "don't send"
    rf"| (?:never|not|dont|wont|t) (?:\w+ ){{0,2}}?{_VERB} "
)
_WARNING = re.compile(r" (?:mefiez|mefier|hameconnage|phishing|beware|vigilant\w*) ")


def sentences(text: str) -> Iterable[str]:
    """The folded sentences of ``text`` (each padded with spaces, as phrase keys are)."""
    for part in _SENTENCE_END.split(text):
        key = phrase_key_uncached(part)
        if key.strip():
            yield key


def is_denied(sentence_key: str) -> bool:
    """True when a folded sentence denies a request or warns about one."""
    return bool(_NEGATED.search(sentence_key) or _WARNING.search(sentence_key))


def asserted(text: str, haystack: str, keys: Iterable[tuple[str, str]]) -> str | None:
    """The first phrase (as written) whose key occurs in ``text`` outside every denied
    sentence, or None. ``haystack`` is ``phrase_key(text)``, for a cheap first test.

    The sentences are folded in one pass, one line per sentence
    (:func:`phrase_key_line_bytes`), and only the lines holding a candidate phrase are
    judged; the same answer as judging every one of :func:`sentences` (a property test
    holds it)."""
    candidates = [(key, phrase) for key, phrase in keys if key in haystack]
    if not candidates:
        return None
    if _BULLET in text:
        text = text.replace(_BULLET, "\n")
    patterns = [_key_pattern(key) for key, _ in candidates]
    if None in patterns:  # a key that is not a plain phrase key: the joined lines
        return _asserted_in_lines(text, candidates)
    # The lines' words without joining them (a Python object per word of the body): each
    # key is found by a pattern that reads a run of spaces as the joined form's one space,
    # and only the line holding a match is collapsed and judged.
    raw = phrase_key_line_bytes(text, _LATIN1_ENDS)  # each end a line, as _SENTENCE_END
    for (_, phrase), pattern in zip(candidates, patterns, strict=True):
        assert pattern is not None  # checked above
        found = pattern.search(raw)
        while found is not None:
            begin = raw.rfind(_MARK, 0, found.start()) + 1
            end = raw.find(_MARK, found.end())
            end = len(raw) if end < 0 else end
            if not is_denied(" " + b" ".join(raw[begin:end].split()).decode("ascii") + " "):
                return phrase
            found = pattern.search(raw, end)
    return None


_MARK = LINE_MARK.encode("ascii")
_KEY_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def _key_pattern(key: str) -> re.Pattern[bytes] | None:
    """A pattern finding phrase key ``key`` (" w1 w2 ") within one line of
    :func:`phrase_key_line_bytes`: its words as whole words (after a space, a line mark or
    the start; before one or the end) with only spaces between. It starts with the first
    word's letters, so the regex engine looks for them in C. None when ``key`` is not a
    padded, single-spaced run of folded words (judged on the joined lines instead)."""
    found = key.split(" ")
    if len(found) < 3 or found[0] or found[-1]:
        return None
    words = found[1:-1]
    if not all(_KEY_WORD.fullmatch(word) for word in words):
        return None
    first = words[0]
    return re.compile(
        f"{first}(?<![^ \x01]{first})".encode("ascii")
        + b"".join(b" +" + word.encode("ascii") for word in words[1:])
        + b"(?![^ \x01])"
    )


def _asserted_in_lines(text: str, candidates: list[tuple[str, str]]) -> str | None:
    """:func:`asserted` on the joined lines (:func:`phrase_key_lines`), for any key."""
    lines = phrase_key_lines(text, _LATIN1_ENDS)
    for key, phrase in candidates:
        start = lines.find(key)
        while start >= 0:
            if not is_denied(line_key_at(lines, start)):
                return phrase
            next_line = lines.find(LINE_MARK, start)
            start = lines.find(key, next_line) if next_line >= 0 else -1
    return None
