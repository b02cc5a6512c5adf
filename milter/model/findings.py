"""Findings: what a check observed, with a stable code, a severity, a brand and evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any


class Severity(IntEnum):
    """How bad a finding is on its own; the policy turns severities into actions."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, name: str) -> Severity:
        """Return the severity named ``name`` (case-insensitive)."""
        return cls[name.upper()]

    def __str__(self) -> str:
        return self.name.lower()


def _freeze(evidence: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in evidence.items()})


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation of one check.

    Attributes:
        code: stable machine name, e.g. ``DMARC_FAIL`` or ``LINK_LOOKALIKE``.
        check: name of the check that produced it.
        severity: how bad it is on its own.
        text: one human sentence saying what and why.
        brand: id of the protected brand concerned, if any.
        evidence: small key/value facts behind the finding (domains, phrases, results).
    """

    code: str
    check: str
    severity: Severity
    text: str
    brand: str | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _freeze(self.evidence))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (used by ``tocsin scan --json`` and the quarantine sidecar)."""
        return {
            "code": self.code,
            "check": self.check,
            "severity": str(self.severity),
            "brand": self.brand,
            "text": self.text,
            "evidence": dict(self.evidence),
        }


CHECK_ERROR = "CHECK_ERROR"
