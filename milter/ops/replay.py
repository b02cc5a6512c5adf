"""What ``tocsin replay`` counts: verdicts, brands, the slowest messages, A/B differences.

Pure bookkeeping over plain rows, so the report is the same whether it is printed as
tables or as JSON.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

NO_BRAND = "-"


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One message's outcome under policy A (and B when comparing)."""

    label: str
    verdict: str
    brand: str | None
    score: float
    rule: str
    elapsed_ms: float
    would: str | None = None
    against_verdict: str | None = None
    against_rule: str | None = None

    @property
    def differs(self) -> bool:
        """Policy B decided otherwise (only when comparing)."""
        return self.against_verdict is not None and self.against_verdict != self.verdict


@dataclass
class ReplaySummary:
    """Running totals; ``slowest`` keeps only the ``keep`` slowest rows."""

    keep: int = 10
    messages: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    against_verdicts: Counter[str] = field(default_factory=Counter)
    would: Counter[str] = field(default_factory=Counter)
    by_brand: dict[str, Counter[str]] = field(default_factory=dict)
    differences: list[ReplayRow] = field(default_factory=list)
    total_ms: float = 0.0
    _slowest: list[tuple[float, int, ReplayRow]] = field(default_factory=list)

    def add(self, row: ReplayRow) -> None:
        """Count one message."""
        self.messages += 1
        self.total_ms += row.elapsed_ms
        self.verdicts[row.verdict] += 1
        if row.would is not None:
            self.would[row.would] += 1
        if row.against_verdict is not None:
            self.against_verdicts[row.against_verdict] += 1
        self.by_brand.setdefault(row.brand or NO_BRAND, Counter())[row.verdict] += 1
        if row.differs:
            self.differences.append(row)
        entry = (row.elapsed_ms, self.messages, row)
        if len(self._slowest) < self.keep:
            heapq.heappush(self._slowest, entry)
        else:
            heapq.heappushpop(self._slowest, entry)

    def add_unreadable(self, label: str, error: str) -> None:
        """Remember an input that could not be read."""
        self.unreadable.append((label, error))

    @property
    def slowest(self) -> list[ReplayRow]:
        """The slowest rows, slowest first."""
        return [row for _, _, row in sorted(self._slowest, reverse=True)]

    def as_dict(self) -> dict[str, Any]:
        """The ``tocsin replay --json`` document (docs/operations-replay.md)."""
        return {
            "messages": self.messages,
            "unreadable": [{"input": label, "error": err} for label, err in self.unreadable],
            "verdicts": dict(self.verdicts.most_common()),
            "would": dict(self.would.most_common()),
            "against_verdicts": dict(self.against_verdicts.most_common()) or None,
            "brands": {b: dict(c.most_common()) for b, c in sorted(self.by_brand.items())},
            "total_ms": round(self.total_ms, 1),
            "slowest": [_row_dict(r) for r in self.slowest],
            "differences": [_row_dict(r) for r in self.differences],
        }


def _row_dict(row: ReplayRow) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input": row.label,
        "verdict": row.verdict,
        "brand": row.brand,
        "score": row.score,
        "rule": row.rule,
        "elapsed_ms": round(row.elapsed_ms, 1),
    }
    if row.would is not None:
        data["would"] = row.would
    if row.against_verdict is not None:
        data["against"] = {"verdict": row.against_verdict, "rule": row.against_rule}
    return data
