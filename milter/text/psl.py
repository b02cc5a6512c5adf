"""Registrable domains from one offline public-suffix list snapshot.

The list is the snapshot bundled with ``tldextract`` (read through its public ``tlds``
attribute, never fetched): :data:`SNAPSHOT` says which one, and a test fails when the
installed ``tldextract`` is not the version that snapshot date was read from.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import tldextract

from milter.text.idna import to_ascii

#: PSL version (``// VERSION:`` line) bundled with :data:`TLDEXTRACT_VERSION`.
SNAPSHOT = "2025-04-07_15-51-09_UTC"
TLDEXTRACT_VERSION = "5.4.0"


class HostParts(NamedTuple):
    """A host split on the public-suffix list: ``sub.domain.suffix``."""

    subdomain: str
    domain: str
    suffix: str

    @property
    def registrable(self) -> str:
        """``domain.suffix`` (or the bare host when it has no known suffix)."""
        if self.domain and self.suffix:
            return f"{self.domain}.{self.suffix}"
        return self.domain or self.suffix


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() and cache_dir=None: bundled snapshot only, no download, no disk cache.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.cache
def _rules() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(exact rules, wildcard parents, exceptions) of the ICANN section, ASCII."""
    exact: set[str] = set()
    wild: set[str] = set()
    exceptions: set[str] = set()
    for rule in _extractor().tlds:
        if rule.startswith("*."):
            wild.add(to_ascii(rule[2:]))
        elif rule.startswith("!"):
            exceptions.add(to_ascii(rule[1:]))
        else:
            exact.add(to_ascii(rule))
    return frozenset(exact), frozenset(wild), frozenset(exceptions)


def prepare() -> None:
    """Load the rules now (they are otherwise loaded on first use)."""
    _rules()


def _suffix_start(host: str, starts: list[int]) -> int:
    """Index (in ``starts``) of the first label of the public suffix; len(starts) if none."""
    exact, wild, exceptions = _rules()
    count = len(starts)
    for idx, pos in enumerate(starts):
        tail = host[pos:]
        if tail in exceptions:
            return idx + 1
        if tail in exact or (idx + 1 < count and host[starts[idx + 1] :] in wild):
            return idx
    return count


def split_host(host: str) -> HostParts:
    """Split a lower-case ASCII host on the public-suffix snapshot.

    Same answers as ``tldextract`` (ICANN section only, unknown TLD → empty suffix) but
    without its per-call URL handling and IDNA checks, which dominate its cost.
    """
    labels = host.split(".")
    starts = [0]
    for label in labels[:-1]:
        starts.append(starts[-1] + len(label) + 1)
    first = _suffix_start(host, starts)
    suffix = host[starts[first] :] if first < len(starts) else ""
    if first == 0:
        return HostParts("", "", suffix)
    dom_index = first - 1
    subdomain = host[: starts[dom_index] - 1] if dom_index else ""
    return HostParts(subdomain, labels[dom_index], suffix)


def registrable_domain(host: str) -> str:
    """Registrable domain (eTLD+1) of ``host``, in the form given (Unicode or ASCII)."""
    return split_host(host).registrable
