"""Judging sentences folded in one pass gives what judging each sentence's key gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter.checks.wording import asserted, is_denied, sentences
from milter.text.confusables import phrase_key, phrase_key_lines

WORDS = (
    "nous",
    "ne",
    "vous",
    "demanderons",
    "jamais",
    "vos",
    "coordonnées",
    "bancaires",
    "envoyez",
    "votre",
    "mot",
    "de",
    "passe",
    "méfiez",
    "never",
    "ask",
    "share",
    "password",
    "Carte",
    "VITALE",
    "n'envoyez",
    "pas",
    "ÉCHÉANCE",
    "ｃａｒｔｅ",
    "12",
    "€",
    "«",
    "»",
)
SEPARATORS = (" ", " ", " ", ", ", ". ", "! ", "?", ";", "\n", "\r\n", " • ", "|", "\x01", "…")
PHRASES = (
    "coordonnées bancaires",
    "mot de passe",
    "password",
    "carte vitale",
    "vos coordonnées",
    "échéance",
    "de",
)


def _reference(text: str, haystack: str, keys: list[tuple[str, str]]) -> str | None:
    candidates = [(key, phrase) for key, phrase in keys if key in haystack]
    if not candidates:
        return None
    parts = [s for s in sentences(text) if any(key in s for key, _ in candidates)]
    for key, phrase in candidates:
        if any(key in s and not is_denied(s) for s in parts):
            return phrase
    return None


TEXTS = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=60)


@given(TEXTS, st.lists(st.sampled_from(PHRASES), min_size=1, max_size=4, unique=True))
def test_same_phrase_as_sentence_by_sentence(
    pieces: list[tuple[str, str]], phrases: list[str]
) -> None:
    text = "".join(word + sep for word, sep in pieces)
    keys = [(phrase_key(p), p) for p in phrases]
    haystack = phrase_key(text)
    assert asserted(text, haystack, keys) == _reference(text, haystack, keys)


@given(st.text(max_size=120))
def test_lines_hold_each_lines_phrase_key(text: str) -> None:
    lines = phrase_key_lines(text)
    keys = [k.strip(" ") for k in lines[1:-1].split("\x01")]
    assert [" " + k.strip(" ") + " " for k in keys] == [
        phrase_key(line) for line in text.split("\n")
    ]


def test_a_denied_sentence_does_not_count_but_a_later_request_does() -> None:
    keys = [(phrase_key("coordonnées bancaires"), "coordonnées bancaires")]
    denied = "Nous ne vous demanderons jamais vos coordonnées bancaires. Bonne journée."
    assert asserted(denied, phrase_key(denied), keys) is None
    asked = denied + " Merci d'envoyer vos coordonnées bancaires aujourd'hui !"
    assert asserted(asked, phrase_key(asked), keys) == "coordonnées bancaires"


@pytest.mark.parametrize("end", [".", "!", "?", ";", "\n", "\r", "•", "|", "...", ". • "])
def test_every_sentence_end_separates_a_denial_from_a_request(end: str) -> None:
    keys = [(phrase_key("coordonnées bancaires"), "coordonnées bancaires")]
    text = f"Nous ne demanderons jamais{end} vos coordonnées bancaires"
    assert asserted(text, phrase_key(text), keys) == "coordonnées bancaires"
    joined = "Nous ne demanderons jamais, vos coordonnées bancaires"
    assert asserted(joined, phrase_key(joined), keys) is None


@pytest.mark.parametrize(
    "text",
    [
        "Nous ne demanderons jamais 😀 vos coordonnées bancaires",
        "Ne communiquez jamais à 100 € vos coordonnées bancaires",
        "Nous ne demanderons jamais … vos coordonnées bancaires",
        "Nous ne demanderons jamais ‼ vos coordonnées bancaires",
        "Nous ne demanderons jamais ！ vos coordonnées bancaires",
        "Nous ne demanderons jamais → vos coordonnées bancaires",
    ],
)
def test_characters_beyond_latin1_do_not_end_a_sentence(text: str) -> None:
    """The raw text has no sentence end here: the denial governs the request."""
    keys = [(phrase_key("coordonnées bancaires"), "coordonnées bancaires")]
    assert asserted(text, phrase_key(text), keys) is None
    assert asserted(text, phrase_key(text), keys) == _reference(text, phrase_key(text), keys)


@given(st.text(max_size=6))
def test_any_text_between_denial_and_request_judged_as_sentence_by_sentence(
    between: str,
) -> None:
    text = f"Nous ne demanderons jamais {between} vos coordonnées bancaires"
    keys = [(phrase_key("coordonnées bancaires"), "coordonnées bancaires")]
    haystack = phrase_key(text)
    assert asserted(text, haystack, keys) == _reference(text, haystack, keys)
