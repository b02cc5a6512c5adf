"""The policy compiled for the checks: built once when a policy is loaded, not per message.

Brand index (official domains and lookalikes), folded brand-name and phrase keys, and the
code sets the rules use. ``prepare`` builds it right after loading (the policy store does
so before swapping a reloaded policy in, so no message pays for it); it is kept on the
policy instance itself, so it lives and dies with the policy — no module-level caches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from milter.links.lookalike import BrandIndex
from milter.links.registry import policy_brands
from milter.policy.model import Policy
from milter.text.confusables import key_words, phrase_key, phrase_key_words, skeleton, words

KEY = "checks.compiled"

PhraseKeys = tuple[tuple[str, str], ...]
"""(folded key, phrase as written) pairs."""


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """Space-padded word keys (phrase keys, name skeletons) found in a haystack by word.

    A key can only occur in a haystack (a phrase key) where all its words do. Each key is
    filed under its rarest word among all the keys, so a haystack's words select the few
    keys worth a substring search, however many keys there are: the cost of a lookup
    follows the haystack and the keys it may hold, not the number of brands.
    """

    keys: tuple[tuple[str, str], ...]
    words: tuple[frozenset[bytes], ...]  # as key_words gives them: UTF-8 bytes
    by_word: Mapping[bytes, tuple[int, ...]]
    filed: frozenset[bytes] = frozenset()  # by_word's words, for a set intersection in C
    one_word: frozenset[int] = frozenset()  # positions of the keys " w " (one word, padded)
    last: list[tuple[str, tuple[tuple[str, str], ...]]] = field(
        default_factory=lambda: [("", ())], compare=False, repr=False
    )
    """The last haystack :meth:`found` was asked about, and its answer: the checks of one
    message ask for the brand names in the same body key two or three times."""

    @classmethod
    def build(cls, keys: tuple[tuple[str, str], ...]) -> KeyIndex:
        """Index ``keys`` ((key, payload) pairs, in the order lookups return them)."""
        words = tuple(key_words(key) for key, _ in keys)
        one_word = frozenset(
            p
            for p, (key, _) in enumerate(keys)
            if key == f" {key.strip()} " and len(key.split()) == 1
        )
        counts: dict[bytes, int] = {}
        for needed in words:
            for word in needed:
                counts[word] = counts.get(word, 0) + 1
        filed: dict[bytes, list[int]] = {}
        for position, needed in enumerate(words):
            if needed:  # a key without words (only spaces) is never looked for
                rarest = min(needed, key=lambda w: (counts[w], -len(w), w))
                filed.setdefault(rarest, []).append(position)
        by_word = MappingProxyType({w: tuple(p) for w, p in filed.items()})
        return cls(keys, words, by_word, frozenset(by_word), one_word)

    def positions(self, haystack: str) -> list[int]:
        """Positions (ascending) of the keys found in ``haystack``."""
        present = phrase_key_words(haystack)
        exact = present is not None  # a phrase key's own words: " w " is in it if w is
        if present is None:
            present = key_words(haystack)
        by_word = self.by_word
        candidates = [p for w in present & self.filed for p in by_word[w]]
        candidates.sort()
        keys, words = self.keys, self.words
        if exact and self.one_word:
            one_word = self.one_word
            return [
                p
                for p in candidates
                if words[p] <= present and (p in one_word or keys[p][0] in haystack)
            ]
        return [p for p in candidates if words[p] <= present and keys[p][0] in haystack]

    def found(self, haystack: str) -> list[tuple[str, str]]:
        """The (key, payload) pairs found in ``haystack``, in key order."""
        last = self.last[0]
        if last[0] == haystack:
            return list(last[1])
        keys = self.keys
        found = tuple(keys[p] for p in self.positions(haystack))
        self.last[0] = (haystack, found)
        return list(found)


_NO_KEYS = KeyIndex((), (), MappingProxyType({}))

POSSESSIVES = ("votre", "vos", "ton", "ta", "tes", "your")
_POSSESSIVE_WORDS = frozenset(POSSESSIVES)
_POSSESSIVE_BYTES = frozenset(word.encode() for word in POSSESSIVES)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class PossessiveFinder:
    """Finds "votre/vos/your … <brand name>" in a phrase key: a possessive, at most three
    words, then a whole brand name (the first that fits, in name order).

    It reads as the pattern ``" (?:votre|…) (?:\\w+ ){0,3}?(?P<name>name|name|…) "``
    does (leftmost possessive, then fewest words between, then the first name in order),
    but starts from the names instead of from the possessives: the names present in the
    text are found through their word index (usually none), and only before those does
    it look back for a possessive. French mail says "votre" and "vos" dozens of times; an
    alternation of thousands of names tried after each costs milliseconds.
    """

    names: KeyIndex  # (" name ", "") in priority order

    @classmethod
    def build(cls, names: Iterator[str] | tuple[str, ...]) -> PossessiveFinder:
        """Index ``names`` (stripped, non-empty name keys, in priority order)."""
        padded = tuple(dict.fromkeys(" " + name + " " for name in names))
        return cls(KeyIndex.build(tuple((name, "") for name in padded)))

    def search(self, haystack: str) -> tuple[str, str] | None:
        """(name, matched phrase) of the first possessive naming a brand, or None."""
        if key_words(haystack).isdisjoint(_POSSESSIVE_BYTES):
            return None  # no possessive word, none before a name either
        best: tuple[int, int, int, int] | None = None  # start, words between, order, end
        keys = self.names.keys
        for order in self.names.positions(haystack):
            name = keys[order][0]
            at = haystack.find(name)
            while at >= 0:
                for between, start in _possessives_before(haystack, at):
                    found = (start, between, order, at + len(name))
                    if best is None or found < best:
                        best = found
                at = haystack.find(name, at + 1)
        if best is None:
            return None
        start, _, order, end = best
        return keys[order][0].strip(), haystack[start:end].strip()


def _possessives_before(haystack: str, at: int) -> Iterator[tuple[int, int]]:
    """(words between, start) of each possessive at most three ``\\w+`` words before the
    space at ``at``; ``start`` is the space before the possessive."""
    end = at
    for between in range(4):
        space = haystack.rfind(" ", 0, end)
        if space < 0:
            return
        word = haystack[space + 1 : end]
        if word in _POSSESSIVE_WORDS:
            yield between, space
        if not _WORD.fullmatch(word):
            return
        end = space


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Lookups derived from one policy.

    Attributes:
        brand_index: official domains and lookalike judge of every brand.
        name_keys: (folded name, brand id) for every brand name, longest first.
        phrase_keys: per phrase set, its folded phrases.
        skeleton_keys: (visual skeleton of a name, brand id), for display names and
            local parts, where "Arneli" must read as ameli.
        possessive: finds "votre/vos/your … <brand name>" in folded text.
        names: ``name_keys`` indexed by word; skeletons: ``skeleton_keys`` indexed by word;
            phrases: ``phrase_keys`` indexed by word, per phrase set.
        brand_of_name: brand id of each stripped name key (the first in ``name_keys``).
        strict_brands: ids of the brands marked ``strict``.
    """

    brand_index: BrandIndex
    name_keys: tuple[tuple[str, str], ...]
    phrase_keys: Mapping[str, PhraseKeys]
    skeleton_keys: tuple[tuple[str, str], ...] = ()
    possessive: PossessiveFinder | None = None
    names: KeyIndex = _NO_KEYS
    skeletons: KeyIndex = _NO_KEYS
    phrases: Mapping[str, KeyIndex] = field(default_factory=dict)
    brand_of_name: Mapping[str, str] = field(default_factory=dict)
    strict_brands: frozenset[str] = frozenset()

    def names_in(self, haystack: str) -> Iterator[tuple[str, str]]:
        """(folded name, brand id) of every non-empty name key found in ``haystack`` (a
        phrase key), in ``name_keys`` order."""
        yield from self.names.found(haystack)

    def phrases_in(self, set_id: str, haystack: str) -> PhraseKeys:
        """The (key, phrase) pairs of phrase set ``set_id`` whose key occurs in
        ``haystack`` (a phrase key), in order."""
        index = self.phrases.get(set_id)
        if index is None or not index.keys:
            return ()
        return tuple(index.found(haystack))


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Build every lookup of ``policy`` (a few hundred milliseconds for the brand index)."""
    names = {(phrase_key(n), bid) for bid, b in policy.brands.items() for n in (b.name, *b.names)}
    phrases = {
        set_id: tuple((phrase_key(p), p) for p in (*ps.fr, *ps.en))
        for set_id, ps in policy.document.phrases.items()
    }
    name_keys = tuple(sorted(names, key=lambda item: (-len(item[0]), item[1])))
    skeletons = {(name_skeleton(key), bid) for key, bid in name_keys if key.strip()}
    stripped = tuple(key.strip() for key, _ in name_keys if key.strip())
    skeleton_keys = tuple(sorted(skeletons, key=lambda item: (-len(item[0]), item[1])))
    brand_of_name: dict[str, str] = {}
    for key, bid in name_keys:
        brand_of_name.setdefault(key.strip(), bid)
    return CompiledPolicy(
        BrandIndex.build(policy_brands(policy)),
        name_keys,
        MappingProxyType(phrases),
        skeleton_keys,
        PossessiveFinder.build(stripped) if stripped else None,
        KeyIndex.build(name_keys),
        KeyIndex.build(skeleton_keys),
        MappingProxyType({set_id: KeyIndex.build(keys) for set_id, keys in phrases.items()}),
        MappingProxyType(brand_of_name),
        frozenset(bid for bid, b in policy.brands.items() if b.strict),
    )


def name_skeleton(text: str) -> str:
    """The visual skeleton of a name's folded words, padded like a phrase key."""
    return " " + skeleton(" ".join(words(text))) + " "


def compiled(policy: Policy) -> CompiledPolicy:
    """The compiled form of ``policy``, built by :func:`prepare` (or now, once)."""
    found = policy.derived.get(KEY)
    if isinstance(found, CompiledPolicy):
        return found
    return prepare(policy)


def prepare(policy: Policy) -> CompiledPolicy:
    """Compile ``policy`` and keep the result on it; call right after loading."""
    result = compile_policy(policy)
    policy.derived[KEY] = result
    return result
