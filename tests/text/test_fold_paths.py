"""The fast paths of folding give exactly what the plain definitions give."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from milter.text import confusables
from milter.text.confusables import (
    fold,
    has_mixed_scripts,
    key_words,
    phrase_key,
    phrase_key_uncached,
    strip_accents,
    words,
)


def _reference_strip(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _reference_fold(text: str) -> str:
    stripped = _reference_strip(unicodedata.normalize("NFKD", text)).casefold()
    return "".join(
        c if c.isascii() or not c.isalpha() else confusables.prototype(c) for c in stripped
    )


@given(st.text(max_size=200))
def test_strip_accents_matches_the_definition(text: str) -> None:
    assert strip_accents(text) == (text if text.isascii() else _reference_strip(text))


@given(st.text(max_size=200))
def test_fold_matches_the_definition(text: str) -> None:
    assert fold(text) == _reference_fold(text)


def test_french_and_greek_text_fold_to_ascii() -> None:
    assert (
        fold("Ré-gularisez vótre Αmazοn — échéance ŝ") == "re-gularisez votre amazon — echeance s"
    )
    assert strip_accents("Caisse des Dépôts") == "Caisse des Depots"


def test_phrase_key_is_cached_and_stable() -> None:
    text = "Votre compte personnel de formation (CPF) expire bientôt"
    first = phrase_key(text)
    assert phrase_key(text) is first  # the second check asking gets the same key, not a refold
    assert first == " votre compte personnel de formation cpf expire bientot "


@given(st.text(max_size=200))
def test_phrase_key_is_the_folded_words_between_spaces(text: str) -> None:
    assert phrase_key_uncached(text) == " " + " ".join(words(text)) + " "


@given(st.text(max_size=200))
def test_the_words_kept_with_a_key_are_the_words_of_that_key(text: str) -> None:
    key = phrase_key(text)
    assert key == phrase_key_uncached(text)
    assert key_words(key) == frozenset(word.encode() for word in words(text))


def test_phrase_key_of_french_text_with_symbols() -> None:
    text = "Payez 12 € « maintenant » — ÉCHÉANCE du\u00a0dossier ﬁscal ẞ"
    assert phrase_key_uncached(text) == " payez 12 maintenant echeance du dossier fiscal ss "


LATIN = st.text(
    alphabet=st.characters(max_codepoint=0x17F) | st.sampled_from("’—€œŒ«»\u00a0\u202fﬁ¼ßÆ\n"),
    max_size=200,
)


@given(LATIN)
def test_phrase_key_of_latin_text_is_the_folded_words(text: str) -> None:
    assert phrase_key_uncached(text) == " " + " ".join(words(text)) + " "


def _reference_mixed_scripts(text: str) -> bool:
    scripts = {unicodedata.name(c, "").split(" ")[0] for c in text if c.isalpha()}
    scripts.discard("")
    return len(scripts) > 1


@given(st.text(max_size=40) | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_mixed_scripts_matches_the_definition(text: str) -> None:
    assert has_mixed_scripts(text) == _reference_mixed_scripts(text)


def test_every_ascii_letter_is_latin() -> None:
    """What the ASCII shortcut of has_mixed_scripts rests on."""
    letters = [chr(c) for c in range(0x80) if chr(c).isalpha()]
    assert {unicodedata.name(c).split(" ")[0] for c in letters} == {"LATIN"}
    assert has_mixed_scripts("Amazon Аmazon") is True  # Cyrillic А: not ASCII
