"""The verdict: what the policy decided about a message, and every reason behind it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from milter.model.auth import AuthResult
from milter.model.findings import Finding


class Disposition(StrEnum):
    """What happens to the message, from mildest to harshest."""

    ACCEPT = "accept"
    TAG = "tag"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    TEMPFAIL = "tempfail"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the verdict is what it is: a rule that matched (or the score fallback)."""

    rule: str
    disposition: Disposition
    text: str
    codes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "rule": self.rule,
            "disposition": str(self.disposition),
            "text": self.text,
            "codes": list(self.codes),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of ``decide``.

    Attributes:
        disposition: accept / tag / quarantine / reject / tempfail.
        brand: the protected brand the message claims, or None.
        score: sum of finding scores under the policy.
        findings: every finding of every check.
        reasons: the rules that fired, the deciding one first.
        auth: authentication results (SPF, DKIM, DMARC, ARC), possibly empty.
        actions: names of the policy actions chosen (banner, defang, subject_tag…).
        would: in monitor mode, the disposition the policy would have applied; the
            message is then delivered unchanged (``disposition`` is accept).
    """

    disposition: Disposition
    brand: str | None
    score: float
    findings: tuple[Finding, ...]
    reasons: tuple[Reason, ...]
    auth: tuple[AuthResult, ...] = ()
    actions: frozenset[str] = frozenset()
    would: Disposition | None = None

    @property
    def monitored(self) -> bool:
        """True when monitor mode turned a verdict into a delivery unchanged."""
        return self.would is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "verdict": str(self.disposition),
            "would": str(self.would) if self.would is not None else None,
            "brand": self.brand,
            "score": self.score,
            "reasons": [r.as_dict() for r in self.reasons],
            "findings": [f.as_dict() for f in self.findings],
            "auth": [a.as_dict() for a in self.auth],  # the review page explains them
            "actions": sorted(self.actions),
        }
