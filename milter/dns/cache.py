"""A bounded, TTL-respecting answer cache shared by every message (see ``DnsResolver``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from milter.dns.resolver import DnsAnswer


class DnsCache:
    """LRU cache of ``DnsAnswer`` keyed by (lower-case name, rdtype).

    Entries expire after their TTL; the least recently used entry is evicted once
    ``max_entries`` is reached. Negative answers (NXDOMAIN / NODATA) are kept for the
    negative TTL of RFC 2308 §5 (min of SOA TTL and SOA MINIMUM) capped at
    ``max_negative_ttl``; positive ones for the smallest TTL of the answer chain capped at
    ``max_ttl``.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        max_ttl: float = 86_400.0,
        max_negative_ttl: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The cached answer, or None when absent or expired."""
        key = (name, rdtype)
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, answer = entry
        if expires <= self._clock():
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return answer

    def put(self, answer: DnsAnswer, ttl: float) -> None:
        """Store ``answer`` for ``ttl`` seconds (capped); a TTL of 0 or less is not cached."""
        negative = answer.nxdomain or not answer.records
        ttl = min(ttl, self.max_negative_ttl if negative else self.max_ttl)
        if ttl <= 0:
            return
        key = (answer.name, answer.rdtype)
        self._entries[key] = (self._clock() + ttl, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
