"""The word index of name/phrase keys finds exactly what a search through every key finds.

``KeyIndex`` exists so that the lookups stay flat in the number of brands (#15); it must
return the same keys, in the same order, as the plain definition: every key with at least
one word whose text occurs in the haystack.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.checks.claim import named_brand_visually, named_brands
from milter.checks.compiled import POSSESSIVES, KeyIndex, PossessiveFinder, compiled, name_skeleton
from milter.policy.model import Policy
from milter.text.confusables import phrase_key

WORDS = ["ameli", "caisse", "des", "depots", "cpf", "mon", "compte", "a", "1", "12", "x"]

word_lists = st.lists(st.sampled_from(WORDS), min_size=0, max_size=4)
keys_strategy = st.lists(
    st.tuples(word_lists.map(lambda ws: " " + " ".join(ws) + " "), st.sampled_from("pqr")),
    max_size=25,
)
haystacks = st.lists(st.sampled_from(WORDS), max_size=12).map(lambda ws: " " + " ".join(ws) + " ")


def plain_found(keys: list[tuple[str, str]], haystack: str) -> list[tuple[str, str]]:
    """The definition: keys with words whose text occurs in ``haystack``, in order."""
    return [(key, payload) for key, payload in keys if key.split() and key in haystack]


@settings(max_examples=400, deadline=None)
@given(keys=keys_strategy, haystack=haystacks)
def test_index_finds_what_a_full_search_finds(keys: list[tuple[str, str]], haystack: str) -> None:
    index = KeyIndex.build(tuple(keys))
    assert index.found(haystack) == plain_found(keys, haystack)


def test_a_key_is_filed_under_its_rarest_word() -> None:
    keys = ((" caisse des depots ", "cdc"), (" caisse 12 ", "b12"), (" caisse 1 ", "b1"))
    index = KeyIndex.build(keys)
    assert set(index.by_word) == {b"depots", b"12", b"1"}  # "caisse" is in every key
    assert index.found(" la caisse 12 vous ecrit ") == [(" caisse 12 ", "b12")]
    assert index.found(" caisse des 1 depots ") == []  # every word, but no key's text
    assert index.found(" caisse 1 et caisse des depots ") == [keys[0], keys[2]]


def test_shipped_policy_lookups_agree_with_a_full_search(policy: Policy) -> None:
    index = compiled(policy)
    texts = [
        "Votre compte Ameli : l'Assurance Maladie vous rembourse",
        "Mon Compte Formation (CPF) et la Caisse des Dépôts",
        "impots.gouv.fr — DGFiP, FranceConnect",
        "rien à voir",
    ]
    for text in texts:
        key = phrase_key(text)
        expected = list(dict.fromkeys(b for _, b in plain_found(list(index.name_keys), key)))
        assert named_brands(text, policy) == expected
    assert named_brands(texts[0], policy)[0] == "ameli"
    hit = named_brand_visually("Arneli Service", policy)
    assert hit is not None
    assert hit[0] == "ameli"
    assert (
        hit[1]
        == plain_found(list(index.skeleton_keys), name_skeleton("Arneli Service"))[0][0].strip()
    )


POSSESSIVE_WORDS = [*WORDS, "votre", "vos", "your", "ta", "espace", "l-x", "é"]
names_strategy = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    min_size=1,
    max_size=12,
)
possessive_haystacks = st.lists(st.sampled_from(POSSESSIVE_WORDS), max_size=14).map(
    lambda ws: " " + " ".join(ws) + " "
)


def possessive_pattern(names: list[str]) -> re.Pattern[str]:
    """The definition the finder replaces: one alternation of every name."""
    alternatives = "|".join(re.escape(n) for n in names)
    possessives = "|".join(POSSESSIVES)
    return re.compile(rf" (?:{possessives}) (?:\w+ ){{0,3}}?(?P<name>{alternatives}) ")


@settings(max_examples=500, deadline=None)
@given(names=names_strategy, haystack=possessive_haystacks)
def test_possessive_finder_reads_as_the_pattern(names: list[str], haystack: str) -> None:
    match = possessive_pattern(names).search(haystack)
    expected = None if match is None else (match.group("name"), match.group(0).strip())
    assert PossessiveFinder.build(tuple(names)).search(haystack) == expected


def test_possessive_finder_examples() -> None:
    finder = PossessiveFinder.build(("mon compte", "ameli", "compte"))
    assert finder.search(" accedez a votre espace ameli ici ") == ("ameli", "votre espace ameli")
    assert finder.search(" votre a b c d ameli ") is None  # more than three words between
    assert finder.search(" votre mon compte ") == ("mon compte", "votre mon compte")
    assert finder.search(" vos l-x ameli ") is None  # a word that is not \w+ ends the run


# Keys padded with one space or more (an unpadded key may match inside a word, which the
# index, by its words, does not look for: phrase keys are padded).
padded_keys = st.lists(
    st.tuples(
        st.tuples(st.sampled_from([" ", "  "]), word_lists, st.sampled_from([" ", "  "])).map(
            lambda parts: parts[0] + " ".join(parts[1]) + parts[2]
        ),
        st.sampled_from("pqr"),
    ),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(keys=padded_keys, texts=st.lists(st.lists(st.sampled_from(WORDS), max_size=12), max_size=3))
def test_phrase_keys_and_repeated_lookups_find_what_a_full_search_finds(
    keys: list[tuple[str, str]], texts: list[list[str]]
) -> None:
    """A haystack made by phrase_key (its words known: a one-word key needs no search)
    and the same index asked again, about the same or another haystack."""
    index = KeyIndex.build(tuple(keys))
    haystacks = [phrase_key(", ".join(ws)) for ws in texts]
    for haystack in [*haystacks, *reversed(haystacks), *haystacks]:
        assert index.found(haystack) == plain_found(keys, haystack)
        assert index.found("".join(haystack)) == plain_found(keys, haystack)  # a copy


def test_one_word_keys_need_their_padding() -> None:
    keys = ((" ameli ", "a"), ("  ameli  ", "b"), ("ameli", "c"), (" cpf", "d"), (" cpf cpf ", "e"))
    index = KeyIndex.build(keys)
    assert index.one_word == frozenset({0})  # " cpf cpf ": one word in the set, twice in the key
    haystack = phrase_key("Ameli, CPF")
    assert index.found(haystack) == [keys[0], keys[2], keys[3]]
    assert index.found(" x ") == []  # not the last answer again
    assert index.found(haystack) == [keys[0], keys[2], keys[3]]
