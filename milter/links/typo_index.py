"""Fast "is this string within a few edits of a known key" lookups.

Keys of up to 8 characters allow 1 edit (compared in the light skeleton only: a merged
letter pair plus an edit is too far for a short name) and are found through a deletion index
(SymSpell-style: a string within one edit of a key shares a one-deletion variant with it).
Longer keys allow 2 edits and are found through shared trigrams (2 edits destroy at most
8 of a key's trigrams), then verified with :func:`edit_distance`. Keys of 4 characters
are never matched by shorter strings (``ats`` is not ``ants``); keys of 3 characters or
less are not indexed at all (``cafe`` is not ``caf``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Generic, TypeVar

from milter.links.skeleton import edit_distance

T = TypeVar("T")

SHORT_KEY = 4
MIN_KEY = 4  # 3-letter names (caf, cpf) get no typo forms: every edit is another word
_ONE_EDIT_MAX = 8
_TRIGRAMS_PER_EDIT = 4


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))} | {text}


def _trigrams(text: str) -> set[str]:
    return set(map(operator.add, map(operator.add, text, text[1:]), text[2:]))


class TypoIndex(Generic[T]):
    """Index of keys (with a payload each) answering :meth:`nearest`."""

    def __init__(self, keys: Mapping[str, T], light_keys: Mapping[str, T]) -> None:
        self._short: dict[str, list[tuple[str, T]]] = {}
        self._long: list[tuple[str, int, T]] = []
        # text length -> trigram -> indexes of long keys of a compatible length (±2)
        self._windows: dict[int, dict[str, list[int]]] = {}
        for key, value in light_keys.items():
            if MIN_KEY <= len(key) <= _ONE_EDIT_MAX:
                for variant in _deletions(key):
                    self._short.setdefault(variant, []).append((key, value))
        for key, value in {**keys, **light_keys}.items():
            if len(key) <= _ONE_EDIT_MAX:
                continue
            grams = _trigrams(key)
            need = max(1, len(grams) - 2 * _TRIGRAMS_PER_EDIT)
            for size in range(len(key) - 2, len(key) + 3):
                postings = self._windows.setdefault(size, {})
                for gram in grams:
                    postings.setdefault(gram, []).append(len(self._long))
            self._long.append((key, need, value))

    def nearest(self, text: str, light: str) -> T | None:
        """Payload of a key within the allowed edits of ``text``, else None.

        ``light`` is the same text under the light skeleton (letter pairs unmerged); short
        keys are only compared in that view, so a merged pair never adds to one edit.
        """
        if MIN_KEY - 1 <= len(light) <= _ONE_EDIT_MAX + 1:
            found = self._near_short(light)
            if found is not None:
                return found
        for view in (text, light) if light != text else (text,):
            if len(view) in self._windows:
                found = self._near_long(view)
                if found is not None:
                    return found
        return None

    def _near_short(self, text: str) -> T | None:
        short = self._short
        for variant in _deletions(text):
            for key, value in short.get(variant, ()):
                if len(key) <= SHORT_KEY and len(text) < len(key):
                    continue
                if edit_distance(text, key, 1) <= 1:
                    return value
        return None

    def _near_long(self, text: str) -> T | None:
        counts: dict[int, int] = {}
        get = counts.get
        for hits in map(self._windows[len(text)].get, _trigrams(text)):
            if hits:
                for idx in hits:
                    counts[idx] = get(idx, 0) + 1
        for idx, count in counts.items():
            key, need, value = self._long[idx]
            if (
                count >= need
                and abs(len(key) - len(text)) <= 2
                and edit_distance(text, key, 2) <= 2
            ):
                return value
        return None
