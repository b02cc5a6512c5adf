"""The "why is this held" summary of a stored verdict, for the top of the message page.

Pure: takes ``Verdict.as_dict()`` as stored with the record (older records may lack the
``auth`` list) and returns plain values for the template, in the order an admin reads
them: the brand claim, each authentication result, each lookalike (technique, Unicode and
punycode forms), the rules that fired, then every other finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOOKALIKE_HOST_KEYS = ("host", "real_host", "shown")


@dataclass(frozen=True, slots=True)
class Lookalike:
    """One domain that imitates a brand's domain."""

    code: str
    unicode: str
    punycode: str
    imitates: str
    technique: str
    text: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the message page shows first."""

    brand: str | None
    claim: str | None
    claim_brands: tuple[str, ...]
    auth: tuple[Mapping[str, Any], ...]
    auth_findings: tuple[Mapping[str, Any], ...]
    lookalikes: tuple[Lookalike, ...]
    rules: tuple[Mapping[str, Any], ...]
    findings: tuple[Mapping[str, Any], ...]
    score: float
    disposition: str


def _dicts(value: object) -> tuple[Mapping[str, Any], ...]:
    return tuple(v for v in value if isinstance(v, Mapping)) if isinstance(value, list) else ()


def _lookalike(finding: Mapping[str, Any]) -> Lookalike | None:
    evidence = finding.get("evidence")
    if not isinstance(evidence, Mapping) or not evidence.get("imitates"):
        return None
    host = next((str(evidence[k]) for k in LOOKALIKE_HOST_KEYS if evidence.get(k)), "")
    ascii_host = str(evidence.get("host_ascii") or evidence.get("real_host_ascii") or host)
    return Lookalike(
        code=str(finding.get("code", "")),
        unicode=host,
        punycode=ascii_host,
        imitates=str(evidence.get("imitates", "")),
        technique=str(evidence.get("technique", "")),
        text=str(finding.get("text", "")),
    )


def explain(verdict: Mapping[str, Any]) -> Explanation:
    """The explanation of ``verdict`` (never raises on odd or partial data)."""
    findings = _dicts(verdict.get("findings"))
    claims = [f for f in findings if f.get("code") == "BRAND_CLAIM"]  # one per brand named
    lookalikes = tuple(x for x in (_lookalike(f) for f in findings) if x is not None)
    shown = {id(c) for c in claims}
    auth_findings = tuple(f for f in findings if f.get("check") == "auth")
    shown |= {id(f) for f in auth_findings}
    score = verdict.get("score")
    return Explanation(
        brand=str(verdict["brand"]) if verdict.get("brand") else None,
        claim="; ".join(str(c.get("text", "")) for c in claims) if claims else None,
        claim_brands=tuple(dict.fromkeys(str(c["brand"]) for c in claims if c.get("brand"))),
        auth=_dicts(verdict.get("auth")),
        auth_findings=auth_findings,
        lookalikes=lookalikes,
        rules=_dicts(verdict.get("reasons")),
        findings=tuple(f for f in findings if id(f) not in shown),
        score=float(score) if isinstance(score, int | float) else 0.0,
        disposition=str(verdict.get("verdict", "")),
    )
