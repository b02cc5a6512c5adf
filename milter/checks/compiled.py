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
from milter.text.confusables import key_words, phrase_key, skeleton, words

KEY = "checks.compiled"

PhraseKeys = tuple[tuple[str, str], ...]
"""(folded key, phrase as written) pairs."""


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Lookups derived from one policy.

    Attributes:
        brand_index: official domains and lookalike judge of every brand.
        name_keys: (folded name, brand id) for every brand name, longest first.
        phrase_keys: per phrase set, its folded phrases.
        skeleton_keys: (visual skeleton of a name, brand id), for display names and
            local parts, where "Arneli" must read as ameli.
        possessive: matches "votre/vos/your … <brand name>" in folded text (group ``name``).
    """

    brand_index: BrandIndex
    name_keys: tuple[tuple[str, str], ...]
    phrase_keys: Mapping[str, PhraseKeys]
    skeleton_keys: tuple[tuple[str, str], ...] = ()
    possessive: re.Pattern[str] | None = None
    name_words: tuple[frozenset[str], ...] = ()
    phrase_words: Mapping[str, tuple[frozenset[str], ...]] = field(default_factory=dict)

    def names_in(self, haystack: str) -> Iterator[tuple[str, str]]:
        """(folded name, brand id) of every non-empty name key found in ``haystack`` (a
        phrase key), in ``name_keys`` order. A key can only occur where all its words do:
        that set test skips most of the substring searches over a long body."""
        present = key_words(haystack)
        for (key, brand_id), needed in zip(self.name_keys, self.name_words, strict=True):
            if needed and needed <= present and key in haystack:
                yield key, brand_id

    def phrases_in(self, set_id: str, haystack: str) -> PhraseKeys:
        """The (key, phrase) pairs of phrase set ``set_id`` whose key occurs in
        ``haystack`` (a phrase key), in order; the same word-set test first."""
        keys = self.phrase_keys.get(set_id, ())
        if not keys:
            return ()
        present = key_words(haystack)
        needs = self.phrase_words[set_id]
        return tuple(
            item
            for item, needed in zip(keys, needs, strict=True)
            if needed <= present and item[0] in haystack
        )


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Build every lookup of ``policy`` (a few hundred milliseconds for the brand index)."""
    names = {(phrase_key(n), bid) for bid, b in policy.brands.items() for n in (b.name, *b.names)}
    phrases = {
        set_id: tuple((phrase_key(p), p) for p in (*ps.fr, *ps.en))
        for set_id, ps in policy.document.phrases.items()
    }
    name_keys = tuple(sorted(names, key=lambda item: (-len(item[0]), item[1])))
    skeletons = {(name_skeleton(key), bid) for key, bid in name_keys if key.strip()}
    alternatives = "|".join(re.escape(key.strip()) for key, _ in name_keys if key.strip())
    possessive = re.compile(
        rf" (?:votre|vos|ton|ta|tes|your) (?:\w+ ){{0,3}}?(?P<name>{alternatives}) "
    )
    return CompiledPolicy(
        BrandIndex.build(policy_brands(policy)),
        name_keys,
        MappingProxyType(phrases),
        tuple(sorted(skeletons, key=lambda item: (-len(item[0]), item[1]))),
        possessive if alternatives else None,
        tuple(frozenset(key.split()) for key, _ in name_keys),
        MappingProxyType(
            {
                set_id: tuple(frozenset(k.split()) for k, _ in keys)
                for set_id, keys in phrases.items()
            }
        ),
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
