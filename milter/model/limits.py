"""A limit hit while scanning one message: what, where, and the finding that says so.

"A limit is never a bypass": when a message goes past a bound (header count, MIME depth,
part count, text size, link count, work time), Tocsin scans what fits and records a
``LIMIT_EXCEEDED`` finding; the policy's ``limits.on_limit`` then says, per limit,
whether the verdict stands on what was scanned or the message is tempfailed / rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

from milter.model.findings import Finding, Severity

LIMIT_EXCEEDED = "LIMIT_EXCEEDED"

#: The limits a message can hit (keys of the policy's ``limits.on_limit``; "size", past
#: ``max_message_bytes``, follows ``limits.oversize`` instead).
LIMIT_NAMES = ("headers", "depth", "parts", "text", "links", "work", "size")

#: What a limit gets when the policy's ``limits.on_limit`` does not name it: scan what
#: fits, except the work budget, which tempfails (a lure must not win by being slow).
DEFAULT_ON_LIMIT = {"work": "tempfail"}


@dataclass(frozen=True, slots=True)
class LimitHit:
    """One limit a message went past: ``limit`` (one of :data:`LIMIT_NAMES`), ``where``
    (the part path, header or stage) and ``detail`` (the numbers)."""

    limit: str
    where: str
    detail: str

    def finding(self, check: str) -> Finding:
        """The ``LIMIT_EXCEEDED`` finding recording this hit."""
        return Finding(
            LIMIT_EXCEEDED,
            check,
            Severity.LOW,
            f"limit {self.limit} exceeded at {self.where}: {self.detail}; scanned what fits",
            None,
            {"limit": self.limit, "where": self.where, "detail": self.detail},
        )
