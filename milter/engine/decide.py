"""decide(findings, policy) → Verdict: first matching rule wins, scores as the fallback.

Pure: no I/O, no clock. Every rule that decided, and the allowlist entries that
removed findings, are kept as reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from milter.model.auth import AuthResult
from milter.model.envelope import Envelope
from milter.model.findings import CHECK_ERROR, Finding, Severity
from milter.model.verdict import Disposition, Reason, Verdict
from milter.policy.model import Policy
from milter.policy.schema import Condition, Scoring


def score_of(finding: Finding, scoring: Scoring) -> float:
    """The score of one finding under ``scoring``."""
    if finding.code in scoring.codes:
        return scoring.codes[finding.code]
    severity: Any = str(finding.severity)  # one of the Literal keys of scoring.severity
    return float(scoring.severity.get(severity, 0.0))


def decide(
    findings: Sequence[Finding],
    policy: Policy,
    *,
    envelope: Envelope | None = None,
    from_domain: str | None = None,
    brand: str | None = None,
    auth: Sequence[AuthResult] = (),
) -> Verdict:
    """The verdict for these findings under ``policy``."""
    envelope = envelope or Envelope()
    kept, allow_reasons = _apply_allowlist(findings, policy, envelope, from_domain)
    effective = policy.effective(envelope.rcpts)
    score = round(sum(score_of(f, effective.scoring) for f in kept), 2)
    rule = next((r for r in effective.rules if _matches(r.when, kept, brand, score)), None)
    if rule is not None:
        reason = Reason(
            rule.name, rule.verdict, rule.description or rule.name, _codes(rule.when, kept)
        )
        disposition, extra = rule.verdict, rule.actions
    else:
        disposition = _by_score(score, effective.scoring)
        reason = Reason(
            "score", disposition, f"score {score:g} under the thresholds", _top_codes(kept)
        )
        extra = ()
    actions = frozenset(extra) | (
        frozenset(effective.actions.tag) if disposition is Disposition.TAG else frozenset()
    )
    verdict = Verdict(
        disposition, brand, score, tuple(kept), (reason, *allow_reasons), tuple(auth), actions
    )
    if policy.document.monitor or (rule is not None and rule.monitor):
        return monitored(verdict)
    return verdict


def monitored(verdict: Verdict) -> Verdict:
    """Monitor mode: keep the would-be verdict and its reasons, deliver unchanged."""
    would = verdict.disposition
    note = Reason(
        "monitor", Disposition.ACCEPT, f"monitor mode: would {would}, delivered unchanged"
    )
    return replace(
        verdict,
        disposition=Disposition.ACCEPT,
        reasons=(*verdict.reasons, note),
        actions=frozenset(),
        would=would,
    )


def _apply_allowlist(
    findings: Sequence[Finding], policy: Policy, envelope: Envelope, from_domain: str | None
) -> tuple[list[Finding], list[Reason]]:
    entries = policy.allow_entries(from_domain, envelope.mail_from_domain, envelope.client_ip)
    kept = list(findings)
    reasons = []
    for entry in entries:
        dropped = [
            f for f in kept if f.code != CHECK_ERROR and (not entry.codes or f.code in entry.codes)
        ]
        if dropped:
            kept = [f for f in kept if f not in dropped]
            codes = tuple(sorted({f.code for f in dropped}))
            reasons.append(
                Reason("allowlist", Disposition.ACCEPT, f"allowlisted: {entry.reason}", codes)
            )
    return kept, reasons


def _matches(cond: Condition, findings: Sequence[Finding], brand: str | None, score: float) -> bool:
    codes = {f.code for f in findings}
    relevant = [f for f in findings if not cond.any or f.code in cond.any]
    checks = (
        not cond.any or bool(codes & set(cond.any)),
        set(cond.all) <= codes,
        not (codes & set(cond.none)),
        cond.min_severity is None
        or any(f.severity >= Severity.parse(cond.min_severity) for f in relevant),
        cond.brand_claimed is None or cond.brand_claimed == (brand is not None),
        cond.min_score is None or score >= cond.min_score,
    )
    return all(checks)


def _by_score(score: float, scoring: Scoring) -> Disposition:
    levels = scoring.thresholds
    for level, disposition in (
        (levels.reject, Disposition.REJECT),
        (levels.quarantine, Disposition.QUARANTINE),
        (levels.tag, Disposition.TAG),
    ):
        if level is not None and score >= level:
            return disposition
    return Disposition.ACCEPT


def _codes(cond: Condition, findings: Sequence[Finding]) -> tuple[str, ...]:
    wanted = set(cond.any) | set(cond.all)
    return tuple(sorted({f.code for f in findings if not wanted or f.code in wanted}))


def _top_codes(findings: Sequence[Finding]) -> tuple[str, ...]:
    return tuple(sorted({f.code for f in findings if f.severity > Severity.INFO}))
