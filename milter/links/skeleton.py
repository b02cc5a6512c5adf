"""Edit distance between domain labels and the dnstwist name of a single edit.

Skeletons (what a label looks like) live in :mod:`milter.text.confusables`.
"""

from __future__ import annotations

import functools

_KEYBOARD_ROWS = (
    "1234567890-",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
)
_VOWELS = frozenset("aeiouy")


def squash(text: str) -> str:
    """Remove dots and hyphens: ``impots.gouv-fr`` → ``impotsgouvfr``."""
    return text.replace(".", "").replace("-", "")


def _strip_common(a: str, b: str) -> tuple[str, str]:
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Levenshtein + adjacent transposition).

    Returns ``limit + 1`` as soon as the distance is known to exceed ``limit``.
    """
    a, b = _strip_common(a, b)
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if not a or not b:
        return max(len(a), len(b))
    if len(a) + len(b) <= 2:
        return 1  # one substitution
    if len(a) == len(b) == 2 and a == b[::-1]:
        return 1  # adjacent transposition
    if limit == 1:
        return 2
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@functools.cache
def _keyboard_neighbours() -> dict[str, frozenset[str]]:
    near: dict[str, set[str]] = {}
    for row_index, row in enumerate(_KEYBOARD_ROWS):
        for col, ch in enumerate(row):
            group = near.setdefault(ch, set())
            group.update(row[max(col - 1, 0) : col + 2])
            for other in _KEYBOARD_ROWS[max(row_index - 1, 0) : row_index + 2]:
                group.update(other[max(col - 1, 0) : col + 2])
    return {ch: frozenset(group - {ch}) for ch, group in near.items()}


def describe_edit(candidate: str, official: str) -> str:
    """Name the single edit turning ``official`` into ``candidate`` (dnstwist vocabulary)."""
    cand, off = _strip_common(candidate, official)
    if len(cand) == 1 and not off:
        idx = candidate.find(cand)
        neighbours = candidate[max(idx - 1, 0) : idx] + candidate[idx + 1 : idx + 2]
        return "repetition" if cand in neighbours else "insertion"
    if len(off) == 1 and not cand:
        return "hyphen omission" if off == "-" else "omission"
    if len(cand) == 2 and cand == off[::-1]:
        return "transposition"
    if len(cand) == 1 and len(off) == 1:
        return _replacement_kind(cand, off)
    if squash(candidate) == squash(official):
        return "hyphenation"
    return "edit"


def _replacement_kind(new: str, old: str) -> str:
    if new in _keyboard_neighbours().get(old, frozenset()):
        return "keyboard replacement"
    if new in _VOWELS and old in _VOWELS:
        return "vowel-swap"
    diff = ord(new) ^ ord(old)
    if diff and not diff & (diff - 1):
        return "bitsquatting"
    if new in "-." or old in "-.":
        return "hyphenation"
    return "replacement"
