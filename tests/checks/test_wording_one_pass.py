"""Judging sentences folded in one pass gives what judging each sentence's key gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.checks.wording import _asserted_in_lines, asserted, is_denied, sentences
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


def _case(
    pieces: list[tuple[str, str]], phrases: list[str]
) -> tuple[str, str, list[tuple[str, str]]]:
    """The text of (word, separator) pieces, its phrase key, and the phrases' keys."""
    text = "".join(word + sep for word, sep in pieces)
    return text, phrase_key(text), [(phrase_key(p), p) for p in phrases]


TEXTS = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=60)


@given(TEXTS, st.lists(st.sampled_from(PHRASES), min_size=1, max_size=4, unique=True))
def test_same_phrase_as_sentence_by_sentence(
    pieces: list[tuple[str, str]], phrases: list[str]
) -> None:
    text, haystack, keys = _case(pieces, phrases)
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


# Words that hold one another ("de" in "mode", "demande", "devos"), separators that leave
# runs of spaces, line ends and non-Latin-1 characters between them: the pattern that
# finds a key in the unjoined lines must see whole words, any run of spaces as one, and
# judge the line of each match.
NESTED_WORDS = ("de", "mode", "demande", "vos", "devos", "code", "mot", "passe", "ne", "jamais")
NESTED_SEPARATORS = (" ", "  ", ", ", " - ", ". ", "\n", " \n ", "!", "\x01", "’", " • ", "\t")
NESTED_PHRASES = ("de", "vos", "mot de passe", "de vos", "mode", "code de", "ne de")
NESTED_TEXTS = st.lists(
    st.tuples(st.sampled_from(NESTED_WORDS), st.sampled_from(NESTED_SEPARATORS)), max_size=40
)


@settings(max_examples=1500)
@given(
    NESTED_TEXTS,
    st.lists(st.sampled_from(NESTED_PHRASES), min_size=1, max_size=3, unique=True),
)
def test_unjoined_lines_give_the_joined_lines_answer(
    pieces: list[tuple[str, str]], phrases: list[str]
) -> None:
    text, haystack, keys = _case(pieces, phrases)
    candidates = [(key, phrase) for key, phrase in keys if key in haystack]
    expected = _asserted_in_lines(text.replace("•", "\n"), candidates) if candidates else None
    assert asserted(text, haystack, keys) == expected
    assert expected == _reference(text, haystack, keys)


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        # "de" is asked only inside "mode" and "demande": no request of "de" here
        ("Ne donnez jamais de code. Le mode demande", "de", None),
        ("Ne donnez jamais de code. Le mode de", "de", "de"),
        # a run of spaces (", ") between the phrase's words is one space in the key
        (
            "Envoyez vos,  coordonnées, bancaires",
            "vos coordonnées bancaires",
            "vos coordonnées bancaires",
        ),
        # the first line is denied; the match in the next line counts
        ("Ne donnez jamais de code\nDonnez de", "de", "de"),
        ("Donnez de\nNe donnez jamais de code", "de", "de"),
        ("x de\nne demandons jamais de", "de", "de"),
    ],
)
def test_whole_words_and_the_line_of_each_match(
    text: str, phrase: str, expected: str | None
) -> None:
    keys = [(phrase_key(phrase), phrase)]
    assert asserted(text, phrase_key(text), keys) == expected
    assert asserted(text, phrase_key(text), keys) == _reference(text, phrase_key(text), keys)


def test_a_key_that_is_no_plain_phrase_key_is_judged_on_the_joined_lines() -> None:
    text = "Donnez vos  codes. Ne donnez jamais vos codes"
    keys = [(" vos  codes ", "double"), ("vos codes", "unpadded")]
    assert asserted(text, " vos  codes vos codes ", keys) == "unpadded"
