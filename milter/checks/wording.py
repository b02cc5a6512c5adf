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

import re
from collections.abc import Iterable

from milter.text.confusables import LINE_MARK, line_key_at, phrase_key_lines, phrase_key_uncached

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

    The sentences are folded in one pass (:func:`phrase_key_lines`, one line per sentence)
    and only those holding a candidate phrase are judged; the same answer as judging every
    one of :func:`sentences` (a property test holds it)."""
    candidates = [(key, phrase) for key, phrase in keys if key in haystack]
    if not candidates:
        return None
    if _BULLET in text:
        text = text.replace(_BULLET, "\n")
    lines = phrase_key_lines(text, _LATIN1_ENDS)  # each end a line: as _SENTENCE_END splits
    for key, phrase in candidates:
        start = lines.find(key)
        while start >= 0:
            if not is_denied(line_key_at(lines, start)):
                return phrase
            next_line = lines.find(LINE_MARK, start)
            start = lines.find(key, next_line) if next_line >= 0 else -1
    return None
