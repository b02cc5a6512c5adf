"""Open connections per client address, with a cap (both front-ends' per-client limit).

One client must not take every connection a front-end has: an attacker opening many
SMTP sessions (directly, or through the MTA in front) would otherwise make the MTA
tempfail everyone's mail.
"""

from __future__ import annotations

from collections import Counter


class PerClient:
    """Counts what each client holds; `claim` refuses past ``cap`` (0: no cap)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: Counter[str] = Counter()

    def claim(self, client: str) -> bool:
        """Count one more for ``client``; False (nothing counted) when it is at the cap."""
        if self.cap and self._open[client] >= self.cap:
            return False
        self._open[client] += 1
        return True

    def release(self, client: str) -> None:
        """One of ``client``'s ended."""
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def held(self, client: str) -> int:
        """How many ``client`` holds now."""
        return self._open[client]

    def snapshot(self) -> dict[str, int]:
        """Every client holding something, and how many."""
        return dict(self._open)
